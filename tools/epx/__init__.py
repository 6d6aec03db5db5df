"""Host tools of epx: build, check, provision, simulate, update."""

__version__ = "0.1.0"
