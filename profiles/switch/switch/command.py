# Payloads of cmnd/<n>/<i>/State: on/1/up or off/0/down, in any case.
_WORDS = {"on": 1, "1": 1, "up": 1, "off": 0, "0": 0, "down": 0}


def on_off(payload):
    """1 or 0 for an accepted payload (bytes or str); None for anything else."""
    try:
        if not isinstance(payload, str):
            payload = payload.decode()
    except (UnicodeError, ValueError):
        return None
    return _WORDS.get(payload.strip().lower())
