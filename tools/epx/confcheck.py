"""A config.txt checked by the firmware that will read it: the profile's host firmware (the
unix build of the same frozen modules) runs its main.py with app.run caught, so the keys are
declared as at boot (app.declare), and epx.config parses the file with its own parsers.
declared() also serves the config docs (epx.confdoc)."""

import difflib
import json
import re
import subprocess
import tempfile
from pathlib import Path

from . import build
from .errors import EpxError

# Run with -c: main.py calls app.run, caught once the keys are declared as at boot.
_DECLARED = """\
import sys
sys.path[:] = ['.frozen']
import json
from epx import app, config

def run(setup=None, watchdog_grace_ms=0, network=True, safe_setup=None):
    app.declare(setup, network)
    print(json.dumps(result()))
    raise SystemExit

app.run = run
"""
_CHECK = """\
def result():
    unknown = []
    with open('config.txt', 'rb') as f:
        errors = config.check(f.read(), NAME, unknown)
    return {'errors': errors, 'unknown': unknown,
            'keys': {n: k.about(n) for n, k in config._keys.items()}}
"""
_UNKNOWN = re.compile(r"^(.*:\d+: (\S+): unknown key)")
_LINE = re.compile(r"^.*?:(\d+): ")
_MISSING = re.compile(r"^.*: (\S+): missing \(required\)$")


def declared(exe, result, files=None):
    """What `result()` (defined by the code `result`) returns, as JSON, in the firmware
    `exe` once its profile's keys are declared; files: {name: bytes} in its folder."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in (files or {}).items():
            Path(tmp, name).write_bytes(data)
        out = subprocess.run([str(exe), "-c", _DECLARED + result + "import main\n"], cwd=tmp,
                             capture_output=True, text=True, timeout=120)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise EpxError(f"{exe}: no answer from the firmware (exit {out.returncode}): "
                       f"{(out.stdout + out.stderr).strip()[-300:]}")


def parse(exe, text, name):
    """(errors, unknown-key warnings, {declared key: (label, unit, example, help)}) of
    config.txt `text` (bytes) as the firmware `exe` reads it, `name` naming the file in the
    messages."""
    got = declared(exe, "NAME = %r\n" % name + _CHECK, {"config.txt": text})
    return got["errors"], got["unknown"], got["keys"]


def problems(exe, text, name):
    """The firmware's errors, and each unknown key (a typo: the device would ignore it) with
    the declared key it most resembles; in line order, keys missing at the end, each with
    its label and an example line from its declaration."""
    errors, unknown, keys = parse(exe, text, name)
    for i, e in enumerate(errors):
        m = _MISSING.match(e)
        if m and m.group(1) in keys:
            label, _, example, _ = keys[m.group(1)]
            errors[i] = e + f": {label}" + (f" (e.g. {m.group(1)} {example})" if example else "")
    for warning in unknown:
        m = _UNKNOWN.match(warning)
        if not m:
            errors.append(warning)
            continue
        near = difflib.get_close_matches(m.group(2), list(keys), 1)
        errors.append(m.group(1) + (f" (did you mean {near[0]}?)" if near else ""))

    def line(e):
        m = _LINE.match(e)
        return int(m.group(1)) if m else 1 << 30

    return sorted(errors, key=line)


def check(profile, board, text, name):
    """EpxError listing every problem of config.txt `text` for the profile's firmware."""
    exe, _ = build.build_unix(profile, board)
    found = problems(exe, text, name)
    if found:
        raise EpxError(f"{name}: refused by the {profile} firmware's parsers, nothing written:\n  "
                       + "\n  ".join(found))
