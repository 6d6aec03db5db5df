# Remote configuration: the signed diagnostic `config` on cmnd/<n>/OTA (epx.diag).
#     config get                      the keys in config.txt; secrets as set/unset
#     config set {"key": "value", ...}  several keys in one change (ssid with its password)
#     config set <sealed>             the same object sealed: base64(iv + AES-256-CBC)
#     config unset key [key ...]
# A change is checked as a whole config.txt, refused with the errors of its lines, else
# staged as the candidate (epx.confstore) and the device reboots into it.
# Every subscriber of the broker reads what crosses it: a secret's value comes sealed under
# a key derived from ota_key (seal_key()), with a fresh IV each time and inside the command's
# HMAC (checked before anything is decrypted); in clear only over TLS.
from micropython import const
from epx import config

# Keys whose values never leave the device (with those declared secret; in safe mode a
# profile's keys are not declared).
SECRETS = ("password", "mqttpassword", "ota_key", "appassword")
SEAL_LABEL = b"\x00epx config seal"  # no signed text starts with a NUL: never a MAC sent
_CBC = const(2)  # cryptolib.aes's MODE_CBC
_BLOCK = const(16)


def change(args):
    """`set {...}` or `unset key ...`: (the whole config.txt it makes, what changes, in
    words without values); ValueError for a malformed request."""
    verb, _, rest = args.partition(" ")
    rest = rest.strip()
    text = current()
    if verb == "set":
        sealed = rest[:1] != "{"
        changes = _pairs(unseal(rest) if sealed else rest, text)
        clear = [k for k in changes if is_secret(k)]
        if clear and not sealed and not _tls():
            raise ValueError("%s would cross the broker in clear: send it sealed (epx config "
                             "set) or over TLS (mqttca)" % ", ".join(clear))
    elif verb == "unset" and rest:
        changes = {}
        for name in rest.split():
            changes[_known(name, text)] = None
    else:
        raise ValueError("expected get, set {\"key\": \"value\", ...} or unset key ...")
    what = ", ".join(("%s unset" if v is None else "%s set") % k for k, v in changes.items())
    return edit(text, changes), what


def is_secret(name):
    return name in SECRETS or config.secret(name)


def seal_key(ota_key):
    """The AES-256 key sealed values come under: HMAC-SHA256(ota_key, SEAL_LABEL)."""
    from epx import hmac

    return hmac.digest(ota_key.encode(), SEAL_LABEL)


def unseal(token):
    """The text of a sealed `set`: base64 of a 16-byte IV and the AES-256-CBC ciphertext of
    the PKCS#7-padded UTF-8 text, under seal_key(ota_key)."""
    import binascii
    import cryptolib
    from epx import ota

    try:
        blob = binascii.a2b_base64(token)
    except ValueError:
        blob = b""
    if len(blob) < 2 * _BLOCK or len(blob) % _BLOCK or not ota.OTA_KEY.value:
        raise ValueError("set takes a JSON object of keys and their values, or one sealed")
    plain = cryptolib.aes(seal_key(ota.OTA_KEY.value), _CBC, blob[:_BLOCK]).decrypt(blob[_BLOCK:])
    pad = plain[-1]
    if not 0 < pad <= _BLOCK or plain[-pad:] != bytes((pad,)) * pad:
        raise ValueError("the sealed values do not open under ota_key")
    try:
        return plain[:-pad].decode()
    except UnicodeError:
        raise ValueError("the sealed values are not UTF-8")


def _tls():
    from epx import mqtt

    return bool(mqtt.CA.value)


def current():
    """The bytes of config.txt (none when it cannot be read)."""
    try:
        with open(config.FILE, "rb") as f:
            return f.read()
    except OSError:
        return b""


def get(text):
    """`key value` of each key line of text (bytes), secrets as `key set`; `key unset` for
    the secrets it lacks."""
    out = []
    seen = set()
    for line in text.split(b"\n"):
        line = line.strip()
        if not line or line[:1] == b"#":
            continue
        try:
            line = line.decode()
        except UnicodeError:
            out.append("(a line that is not UTF-8)")
            continue
        name = line.split(None, 1)[0]
        seen.add(name)
        out.append(name + " set" if is_secret(name) else line)
    for name in SECRETS:
        if name not in seen and config.declared(name):
            out.append(name + " unset")
    return "\n".join(out)


def edit(text, changes):
    """text (bytes) with changes ({name: value, or None to remove}): a key's line is
    replaced in place (the first one; repeats go), a new key appended; comments and other
    lines kept as they are."""
    out = []
    done = set()
    for line in text.split(b"\n"):
        words = line.split(None, 1)
        name = words[0].decode() if words and words[0][:1] != b"#" and _ascii(words[0]) else None
        if name in changes:
            if name in done or changes[name] is None:
                done.add(name)
                continue
            done.add(name)
            line = ("%s %s" % (name, changes[name])).encode()
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    for name, value in changes.items():
        if name not in done and value is not None:
            out.append(("%s %s" % (name, value)).encode())
    return b"\n".join(out) + b"\n"


def _pairs(text, config_text):
    import json

    try:
        pairs = json.loads(text)
    except ValueError:
        pairs = None
    if not isinstance(pairs, dict) or not pairs:
        raise ValueError("set takes a JSON object of keys and their values")
    changes = {}
    for name, value in pairs.items():
        if not isinstance(value, str):
            raise ValueError("the value of %s is not a string" % name[:32])
        for c in value:
            if c < " " or "\x7f" <= c <= "\x9f":  # a line break would add a line
                raise ValueError("the value of %s has a control character" % name[:32])
        changes[_known(name, config_text)] = value
    return changes


def _known(name, text):
    # Declared, or in config.txt: in safe mode the profile's keys are not declared, and a
    # bad one may be what has to change.
    if not config.declared(name) and not _has(text, name.encode()):
        raise ValueError("no config key %r" % name[:32])
    return name


def _has(text, name):
    for line in text.split(b"\n"):
        words = line.split(None, 1)
        if words and words[0] == name:
            return True
    return False


def _ascii(word):
    for b in word:
        if b > 126:
            return False
    return True
