class EpxError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""
