# Log lines: printed, and the latest kept (bounded) for diagnostics over MQTT; stamped
# with the UTC time once the clock holds one.
from time import gmtime, time

from epx import loop

_MAX_LINES = const(32)
_MAX_LEN = const(200)
_SET_AFTER = const(757382400)  # 2024-01-01 (seconds since 2000): earlier, the clock was never set

_lines = []


def utc():
    """The time as 2025-06-01T12:00:05Z, or None while the clock counts from 2000-01-01
    (power-on) and was never set."""
    t = time()
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % gmtime(t)[:6] if t >= _SET_AFTER else None


def _log(level, text):
    up = loop.uptime_ms()
    line = "%d.%03d %s %s" % (up // 1000, up % 1000, level, text)
    now = utc()
    if now:
        line = now + " " + line
    print(line)
    if len(line) > _MAX_LEN:
        line = line[:_MAX_LEN]
    if len(_lines) >= _MAX_LINES:
        _lines.pop(0)
    _lines.append(line)


def info(text):
    _log("I", text)


def warn(text):
    _log("W", text)


def error(text):
    _log("E", text)


def lines():
    """The latest lines, oldest first."""
    return _lines
