# config.txt: one `key value` per line (the value runs to the end of the line, spaces and
# all), `#` starts a comment line. Modules declare their keys, one line each, with what a
# person reads about them (the setup page, the config docs): "label|unit|example|help".
#     CAPACITY = config.key("capacity", float, doc="Tank capacity|unit|1000|Its volume")
#     MAXFLOW = config.key("maxflow", float, 60.0, "Highest flow|unit/min|60|...")
# A broken config (bad values, empty values, control characters, repeated or missing
# required keys, overlong lines) sets safe_mode; errors name the line. A UTF-8 byte order
# mark at the start of the file is skipped.
FILE = "config.txt"

_HASH = const(35)  # ord("#")
_NEWLINE = const(10)
_MAX_LINE = const(512)  # bytes, newline included
_BOM = b"\xef\xbb\xbf"
_MAX_NAME = const(32)
_REQUIRED = object()
_keys = {}
_secrets = set()  # names of the keys whose values never leave the device in clear
_rules = []
errors = []
warnings = []
safe_mode = False
_loaded = False


class Key:
    # Four attributes: an instance dict's table of 4 holds them (doc: a frozen string).

    def __init__(self, parse, default, doc):
        self.parse = parse
        self.default = default
        self.value = None if default is _REQUIRED else default
        self.doc = doc

    @property
    def required(self):
        return self.default is _REQUIRED

    def about(self, name):
        """(label, unit, example, help) from doc; the label is at least the key's name."""
        parts = self.doc.split("|", 3)
        parts += [""] * (4 - len(parts))
        return parts[0] or name, parts[1], parts[2], parts[3]


def key(name, parse=str, default=_REQUIRED, doc="", secret=False):
    """Declare a key: parse is str, int, float, bool or a function that parses the text and
    raises ValueError with a message. Without a default the key is required. doc: its
    "label|unit|example|help" for people. A secret's value is never shown, and crosses
    MQTT sealed (epx.confcmd)."""
    if name in _keys:
        raise ValueError("config key %s declared twice" % name)
    if _loaded:
        raise RuntimeError("config key %s declared after %s was read" % (name, FILE))
    k = _keys[name] = Key(_PARSERS.get(parse, parse), default, doc)
    if secret:
        _secrets.add(name)
    return k


def rule(check):
    """A check across keys, made after every line is read: check(value) returns None or
    (name, message), an error on the line of key `name`; value(name, default) is a key's
    parsed value (default when the file leaves it out or it is bad)."""
    _rules.append(check)


def declared(name):
    return name in _keys


def secret(name):
    """Is name a key declared secret?"""
    return name in _secrets


def load(path=FILE, unknown_ok=False):
    """Read path into the declared keys; fill errors and warnings; set safe_mode."""
    global safe_mode, _loaded
    _loaded = True
    values = {}
    try:
        f = open(path, "rb")
    except OSError as e:
        errors.clear()
        warnings.clear()
        errors.append("%s: cannot read (%s)" % (path, e))
        _missing(path, {}, errors)
    else:
        with f:
            _parse(f, path, values, errors, warnings, unknown_ok)
    for name, value in values.items():
        _keys[name].value = value
    safe_mode = bool(errors)


def check(text, path=FILE, unknown=None):
    """The errors load() would report for a config.txt holding text (bytes or str), in the
    same words; the running values stay as they are. unknown: a list for the unknown keys'
    warnings (without it they are not reported)."""
    import io

    errs = []
    _parse(io.BytesIO(text.encode() if isinstance(text, str) else text), path, {}, errs,
           [] if unknown is None else unknown, unknown is None)
    return errs


def _parse(f, path, values, errs, warns, unknown_ok):
    # values: name -> parsed value of each good line.
    errs.clear()
    warns.clear()
    seen = {}  # name -> its line
    try:
        _read(f, path, seen, values, errs, warns, unknown_ok)
        for check in _rules:
            bad = check(values.get)
            if bad is not None:
                errs.append("%s:%d: %s: %s" % (path, seen.get(bad[0], 0), bad[0], bad[1]))
                values.pop(bad[0], None)  # it keeps its default, as a bad line does
    except Exception as e:  # whatever the file holds, the device boots (safe mode)
        errs.append("%s: %s: %s" % (path, type(e).__name__, e))
    _missing(path, seen, errs)


def _missing(path, seen, errs):
    for name, k in _keys.items():
        if k.required and name not in seen:
            errs.append("%s: %s: missing (required)" % (path, name))


def _read(f, path, seen, values, errors, warnings, unknown_ok):
    n = 0
    while True:
        line = f.readline(_MAX_LINE + 1)
        if not line:
            break
        n += 1
        if n == 1 and line.startswith(_BOM):
            line = line[3:]
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
        bad = _control(line)
        if bad is not None:  # named by code only: the value may be a secret
            errors.append("%s:%d: control character 0x%02x" % (path, n, bad))
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
            if len(parts) < 2:
                errors.append("%s: empty value (%s)" % (
                    where, "required" if k.required else "leave the line out for the default"))
                continue
            try:
                values[name] = k.parse(parts[1])
            except ValueError as e:
                errors.append("%s: %s" % (where, e))


def _control(line):
    # The code of the first control character (C0 but tab, DEL, C1) in line, or None.
    for c in line:
        if c < " " and c != "\t" or "\x7f" <= c <= "\x9f":
            return ord(c)
    return None


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


def _name_chars(text):
    for c in text:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "_-"):
            return False
    return True


def name(text):
    """A name that becomes an MQTT topic level and client id (mqttname): 1 to 32 of
    A-Z a-z 0-9 _ - (no / + # or spaces)."""
    if not 0 < len(text) <= _MAX_NAME or not _name_chars(text):
        raise ValueError("%r is not a name of 1-%d letters, digits, _ or -" % (text, _MAX_NAME))
    return text


def host(text):
    """A host name (RFC 1123: labels of 1-63 letters, digits or -, not starting or ending
    with -, 253 characters at most) or an IPv4 address (the ESP32 port resolves IPv4 only)."""
    labels = text.split(".")
    if all(l.isdigit() for l in labels):  # numeric: a dotted quad, nothing else
        if len(labels) == 4 and all(len(l) <= 3 and int(l) <= 255 for l in labels):
            return text
        raise ValueError("%r is not an IPv4 address" % text)
    if len(text) <= 253:
        for l in labels:
            if not 0 < len(l) <= 63 or l[0] == "-" or l[-1] == "-" or not _name_chars(l) \
                    or "_" in l:
                break
        else:
            return text
    raise ValueError("%r is not a host name or IPv4 address" % text)


def hosts(text):
    """The nodes of a broker cluster, tried in turn: one or more `host[:port]`, comma
    separated, each host as host() takes it; [(host, port or None)], None: the default."""
    nodes = []
    for entry in text.split(","):
        entry = entry.strip()
        h, port = entry, None
        if ":" in entry:
            h, _, p = entry.rpartition(":")
            try:
                port = int(p)
            except ValueError:
                port = 0
            if not 0 < port <= 65535:
                raise ValueError("%r: the port is not a number 1..65535" % entry)
        if not h:
            raise ValueError("%r has an empty entry (host[:port],host[:port]...)" % text)
        node = (host(h), port)
        if node in nodes:
            raise ValueError("%r names %s twice" % (text, entry))
        nodes.append(node)
    return nodes


def ssid(text):
    """A WiFi network name: 1 to 32 bytes (IEEE 802.11)."""
    if not 0 < len(text.encode()) <= 32:
        raise ValueError("an SSID is 1-32 bytes, this one %d" % len(text.encode()))
    return text


def wifi_password(text):
    """A WPA2 passphrase (8-63 printable ASCII characters) or PSK (64 hex digits); None
    for an open network. The error does not repeat the value."""
    if text == "None":
        return None
    if 8 <= len(text) <= 63 and all(" " <= c <= "~" for c in text):
        return text
    if len(text) == 64:
        try:
            bytes.fromhex(text)
            return text
        except ValueError:
            pass
    raise ValueError("a WPA2 password is 8-63 printable ASCII characters or 64 hex digits "
                     "(None: an open network); this one has %d characters" % len(text))
