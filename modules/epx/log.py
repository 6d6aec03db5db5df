# Log lines: printed, and the latest kept (bounded) for diagnostics over MQTT.
from epx import loop

_MAX_LINES = const(32)
_MAX_LEN = const(200)

_lines = []


def _log(level, text):
    up = loop.uptime_ms()
    line = "%d.%03d %s %s" % (up // 1000, up % 1000, level, text)
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
