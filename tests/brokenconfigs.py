"""Broken config.txt files for a profile, generated from its config.txt.example: missing,
empty, comments only, each key dropped (required ones), empty, with control characters,
overlong, not UTF-8, repeated, of the wrong type; every key empty; byte order marks, other
encodings and line ends; seeded garbage. Each case says what must break and how a test
recognises the error config.txt reports for it."""

import random
from collections import namedtuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The module whose import declares a profile's keys (app.run's setup), the safe-mode module
# its main.py imports, and whether app.run starts the network (profiles/<p>/main.py).
PROFILES = {
    "bare": ("bare.service", None, True),
    "energy": ("energy.service", None, True),
    "h2o": ("h2o.service", None, True),
    "relay": ("relay.service", "relay.safe", True),
    "scale": ("scale.sensor", "scale.safe", False),
    "scale_manager": ("scale_manager.service", None, True),
    "switch": ("switch.service", None, True),
    "weather": ("weather.service", None, True),
}

# content None: no config.txt at all. error: a regex one of config.txt's errors must match
# ("{path}" stands for the file's name). offline: the network keys are unusable.
Case = namedtuple("Case", "label content error offline")

NETWORK_KEYS = ("ssid", "mqttbroker")
# Values a protocol refuses, whatever the profile (MQTT 3.1.1 4.7, RFC 1123, IEEE 802.11).
WRONG = {
    "mqttname": ["a/b", "my tank", "#", "+", "x" * 33],
    "mqttbroker": ["broker:0", "broker:http", "a,,b", "a:1,a:1", "-broker", "1.2.3.256", "[::1]",
                   "a..b"],
    "ssid": ["x" * 33],
    "password": ["short", "ä" * 8],
    "mqttport": ["0", "65536", "http"],
    "channel": ["0", "15", "six"],
    "pmk": ["secret", "00" * 15],
    "sensor": ["aa:bb", "zz:zz:zz:zz:zz:zz"],
    "manager": ["aa:bb"],
}
NOT_A_NUMBER = ["abc", "nan", "1e999", "--1"]
CONTROLS = ["\x00", "\x01", "\x1b[2J", "\x7f", "\u0085", "\r", "\x08"]


def example(profile):
    """The (key, value) lines of a profile's config.txt.example."""
    pairs = []
    for line in (ROOT / "profiles" / profile / "config.txt.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            pairs.append((key, value.strip()))
    return pairs


def _numeric(value):
    try:
        float(value)
        return True
    except ValueError:
        return False


def generate(profile, required, network=True, at_least=200, seed=16):
    """Broken configs for profile: `required` is the set of keys the firmware declares
    required (config.key without a default)."""
    base = example(profile)
    cases = []

    def text(pairs):
        return "".join(f"{k} {v}\n" if v is not None else f"{k}\n" for k, v in pairs).encode()

    def add(label, content, error, broken_keys=()):
        offline = network and any(k in NETWORK_KEYS for k in broken_keys)
        cases.append(Case(label, content, error, offline))

    add("no config.txt", None, r"^{path}: cannot read", NETWORK_KEYS)
    add("empty file", b"", r"^{path}: \w+: missing \(required\)", NETWORK_KEYS)
    add("comments only", b"# nothing here\n\n   \n#ssid x\n", r"missing \(required\)", NETWORK_KEYS)
    add("blank lines only", b"\n" * 50, r"missing \(required\)", NETWORK_KEYS)
    add("every key empty", text([(k, None) for k, _ in base]),
        r"^{path}:1: \S+: empty value", [k for k, _ in base])
    for i, (key, value) in enumerate(base):
        n = i + 1
        at = rf"^{{path}}:{n}: "

        def variant(new_line, rest=None):
            lines = [(k, v) for k, v in base]
            out = b""
            for j, (k, v) in enumerate(lines):
                out += new_line if j == i else text([(k, v)])
            return out

        if key in required:
            dropped = text([p for j, p in enumerate(base) if j != i])
            add(f"{key} missing", dropped, rf"^{{path}}: {key}: missing \(required\)", [key])
        add(f"{key} empty", variant(key.encode() + b"\n"), at + rf"{key}: empty value", [key])
        add(f"{key} blank value", variant(key.encode() + b" \t \n"), at + rf"{key}: empty value", [key])
        for c in dict.fromkeys(CONTROLS[i % 3::3] + ["\x00"]):
            add(f"{key} with {c!r}", variant(f"{key} {value}{c}x\n".encode()),
                at + "control character 0x", [key])
        add(f"{key} overlong", variant(f"{key} {value}{'x' * 600}\n".encode()),
            at + "longer than 512 characters", [key])
        add(f"{key} not UTF-8", variant(f"{key} {value}".encode() + b"\xff\xfe\n"),
            at + "not UTF-8 text", [key])
        add(f"{key} repeated", variant(text([(key, value), (key, value)])),
            rf"^{{path}}:{n + 1}: {key}: repeated \(first on line {n}\)", [])
        wrong = WRONG.get(key) or (NOT_A_NUMBER if _numeric(value) else [])
        for bad in wrong:
            add(f"{key} {bad!r}", variant(f"{key} {bad}\n".encode()), at + rf"{key}: ", [key])
    # whole files
    good = text(base)
    bom = "\ufeff".encode()
    first = base[0][0]
    add("BOM, then a required key missing", bom + text([p for p in base if p[0] not in required][:1] or [("#", None)]),
        r"missing \(required\)", [k for k in required])
    add("two BOMs", bom + bom + good, rf"^{{path}}: {first}: missing \(required\)|^{{path}}:1: ", [first])
    add("UTF-16 with BOM", "\ufeff".encode("utf-16-le") + good.decode().encode("utf-16-le"),
        r"not UTF-8|control character|missing", NETWORK_KEYS)
    add("classic Mac line ends", good.replace(b"\n", b"\r"), r"^{path}:1: control character 0x0d",
        NETWORK_KEYS)
    add("erased flash (0xff)", b"\xff" * 4096, r"not UTF-8|longer than", NETWORK_KEYS)
    add("zeroed (NUL)", b"\x00" * 300, r"^{path}:1: (control character 0x00|longer than)", NETWORK_KEYS)
    add("JSON instead", b'{"ssid": "home", "mqttbroker": "10.0.0.2"}\n', r"missing \(required\)",
        NETWORK_KEYS)
    add("shell script", b"#!/bin/sh\nexport SSID=home\nssid=home\n", r"missing \(required\)", NETWORK_KEYS)
    rng = random.Random(f"{profile}-{seed}")
    k = 0
    while len(cases) < at_least or k < 20:
        k += 1
        size = rng.choice((1, 7, 64, 511, 513, 2000))
        if k % 2:
            blob = bytes(rng.randrange(256) for _ in range(size))
        else:  # printable garbage lines: keys nobody declared
            blob = "".join(rng.choice("abcdefghij =#\n\t0123456789") for _ in range(size)).encode()
        add(f"garbage {k} ({size} bytes)", blob, r"missing \(required\)|not UTF-8|control|longer",
            NETWORK_KEYS)
    if not network:
        cases = [c._replace(offline=False) for c in cases]
    return cases
