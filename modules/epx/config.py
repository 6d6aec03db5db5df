# config.txt: one `key value` per line (the value runs to the end of the line, spaces and
# all), `#` starts a comment line. Modules declare their keys, one line each:
#     CAPACITY = config.key("capacity", float)        # required
#     MAXFLOW = config.key("maxflow", float, 60.0)    # optional
# A broken config (bad values, repeated or missing required keys, overlong lines) sets
# safe_mode; errors name the line.
FILE = "config.txt"

_HASH = const(35)  # ord("#")
_NEWLINE = const(10)
_MAX_LINE = const(512)  # bytes, newline included
_REQUIRED = object()
_keys = {}
errors = []
warnings = []
safe_mode = False
_loaded = False


class Key:
    required = False  # set on the few required keys only: a small instance dict each

    def __init__(self, parse, default):
        self.parse = parse
        if default is _REQUIRED:
            self.required = True
            default = None
        self.value = default


def key(name, parse=str, default=_REQUIRED):
    """Declare a key: parse is str, int, float, bool or a function that parses the text and
    raises ValueError with a message. Without a default the key is required."""
    if name in _keys:
        raise ValueError("config key %s declared twice" % name)
    if _loaded:
        raise RuntimeError("config key %s declared after %s was read" % (name, FILE))
    k = _keys[name] = Key(_PARSERS.get(parse, parse), default)
    return k


def load(path=FILE, unknown_ok=False):
    """Read path into the declared keys; fill errors and warnings; set safe_mode."""
    global safe_mode, _loaded
    _loaded = True
    errors.clear()
    warnings.clear()
    seen = {}
    try:
        f = open(path, "rb")
    except OSError as e:
        errors.append("%s: cannot read (%s)" % (path, e))
    else:
        with f:
            try:
                _read(f, path, seen, unknown_ok)
            except Exception as e:  # whatever the file holds, the device boots (safe mode)
                errors.append("%s: %s: %s" % (path, type(e).__name__, e))
    for name, k in _keys.items():
        if k.required and name not in seen:
            errors.append("%s: %s: missing (required)" % (path, name))
    safe_mode = bool(errors)


def _read(f, path, seen, unknown_ok):
    n = 0
    while True:
        line = f.readline(_MAX_LINE + 1)
        if not line:
            break
        n += 1
        if len(line) > _MAX_LINE:
            errors.append("%s:%d: longer than %d characters" % (path, n, _MAX_LINE))
            while line and line[-1] != _NEWLINE:  # the rest of it
                line = f.readline(_MAX_LINE + 1)
            continue
        line = line.strip()
        if not line or line[0] == _HASH:
            continue
        try:
            line = line.decode()
        except UnicodeError:
            errors.append("%s:%d: not UTF-8 text" % (path, n))
            continue
        parts = line.split(None, 1)
        name = parts[0]
        k = _keys.get(name)
        where = "%s:%d: %s" % (path, n, name)
        if k is None:
            if not unknown_ok:
                warnings.append("%s: unknown key (ignored)" % where)
        elif name in seen:
            errors.append("%s: repeated (first on line %d)" % (where, seen[name]))
        else:
            seen[name] = n
            try:
                k.value = k.parse(parts[1] if len(parts) > 1 else "")
            except ValueError as e:
                errors.append("%s: %s" % (where, e))


# --- value types ---------------------------------------------------------------------


def _bool(text):
    t = text.lower()
    if t in ("1", "on", "true"):
        return True
    if t in ("0", "off", "false"):
        return False
    raise ValueError("%r is not a boolean (0/1/on/off/true/false)" % text)


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise ValueError("%r is not an integer" % text)


def _float(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        raise ValueError("%r is not a number" % text)
    return value


_PARSERS = {bool: _bool, int: _int, float: _float, str: str}


def int_range(low, high):
    """An integer from low to high."""

    def parse(text):
        value = _int(text)
        if not low <= value <= high:
            raise ValueError("%d is out of range %d..%d" % (value, low, high))
        return value

    return parse


def one_of(*choices):
    """One of the given words."""

    def parse(text):
        if text not in choices:
            raise ValueError("%r is not one of %s" % (text, ", ".join(choices)))
        return text

    return parse


def ascending_floats(text):
    """Comma-separated numbers, each greater than the one before: 20,40,60,80,100."""
    values = [_float(t.strip()) for t in text.split(",")]
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            raise ValueError("%r is not ascending" % text)
    return values
