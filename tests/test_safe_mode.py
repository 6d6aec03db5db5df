"""Safe mode cannot crash, whatever config.txt holds. For every profile, at least 200
broken configs (tests/brokenconfigs.py: missing, empty, every key empty, each key dropped,
empty, with control characters, overlong, not UTF-8, repeated, of the wrong type, byte order
marks, other encodings and line ends, garbage) are checked in two ways:

- unit level, all of them in ONE run of the profile's own firmware: the profile's modules
  declare their keys as at boot, then for each config `config.load()`, safe mode's reports
  (`app._take_reports`) and its network decision (`app.offline_reason()`, the cue the
  fallback access point of issue 13 will take) run as the boot runs them. Each must end in
  safe mode with the error the generator expects, and the decision must be right: offline
  exactly when the ssid or broker is unusable. Cheap, and faithful for the parser and the
  decisions, which are pure functions of the file.
- full boots, a few per profile (no file, empty file, garbage, no mqttbroker, no usable
  mqttname, a broken key with the broker down): the simulated device boots the real image, runs one hour of device time in 5 s
  steps (the watchdog on) and must still be in its first boot, in safe mode, with the errors
  on its console, and, when a broker is usable, the safe-mode report on stat/<n>/Log under
  the fallback name <profile>-<chip id tail> when mqttname is broken. The battery scale
  sensor's safe mode is a deep sleep by design: it must sleep, never crash.
"""

import json
import re

import pytest

from brokenconfigs import PROFILES, generate
from epx import build
from epx.paths import ROOT
from fwcode import run_code

ENTRY = "import sys;sys.path[:]=['.frozen'];import json\n"
CHECK = """
import machine
from epx import app, config
for m in MODULES:
    __import__(m)
if NETWORK:
    from epx import ap, diag, net, mqtt  # as app imports them: their config keys
keys = config._keys
defaults = [(k, k.value) for k in keys.values()]
print("REQUIRED", json.dumps(sorted(n for n, k in keys.items() if k.required)))
for path in PATHS:
    for k, v in defaults:
        k.value = v
    config.load(path)
    app.safe_mode = False
    app.safe_reasons.clear()
    app._reports.clear()
    if config.safe_mode:
        app._safe("%s broken" % path)
    app._take_reports(machine.PWRON_RESET)
    off = app.offline_reason() if NETWORK else None
    pw = ap.password(config.safe_mode) if NETWORK else None
    print("CASE", json.dumps([config.safe_mode, config.errors, off, app.pending_reports(), pw]))
"""


def firmware(profile):
    return build.build_unix(profile)[0]


def required_keys(exe, profile, tmp_path):
    setup, safe, network = PROFILES[profile]
    mods = [m for m in (setup, safe) if m]
    code = ENTRY + f"MODULES = {mods!r}\nNETWORK = {network}\nPATHS = []\n" + CHECK
    r = run_code(exe, code, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    return set(json.loads(r.stdout.split("REQUIRED ", 1)[1].splitlines()[0]))


# The access point password of a device that ran before (ap.password() keeps it in NVS).
REMEMBERED = "remembered-pass-1"


def remembered_nvs(tmp_path):
    import base64

    (tmp_path / "nvs.json").write_text(json.dumps({"epx": {
        "appassword": ["blob", base64.b64encode(REMEMBERED.encode()).decode()]}}))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_200_broken_configs_each_end_in_safe_mode_with_their_error(profile, tmp_path):
    """... and reachable: safe mode opens the access point at once, with the password the
    device had (none of these files has a usable appassword of its own)."""
    exe = firmware(profile)
    remembered_nvs(tmp_path)
    setup, safe, network = PROFILES[profile]
    cases = generate(profile, required_keys(exe, profile, tmp_path), network)
    assert len(cases) >= 200
    paths = []
    for i, case in enumerate(cases):
        path = f"c{i}.txt"
        if case.content is not None:
            (tmp_path / path).write_bytes(case.content)
        paths.append(path)
    mods = [m for m in (setup, safe) if m]
    code = ENTRY + f"MODULES = {mods!r}\nNETWORK = {network}\nPATHS = {paths!r}\n" + CHECK
    r = run_code(exe, code, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    results = [json.loads(line[5:]) for line in r.stdout.splitlines() if line.startswith("CASE ")]
    assert len(results) == len(cases), r.stdout[-3000:]
    for case, path, (safe_mode, errors, offline, reports, pw) in zip(cases, paths, results):
        what = (case.label, errors, offline)
        assert pw == (REMEMBERED if network else None), what
        assert safe_mode and errors, what
        pattern = case.error.replace("{path}", re.escape(path))
        assert any(re.search(pattern, e) for e in errors), (pattern, what)
        assert (offline is not None) == case.offline, what
        report = [x for x in reports if x.startswith("safe mode: ")]
        assert report and all(e in report[0] for e in errors), what
        assert not any(re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", x) for x in reports), what


def test_generated_configs_are_distinct():
    from brokenconfigs import example

    for profile in PROFILES:
        base = example(profile)
        assert base, profile
        cases = generate(profile, {k for k, _ in base}, PROFILES[profile][2])
        labels = [c.label for c in cases]
        assert len(set(labels)) == len(labels), profile
        assert all(c.content != "".join(f"{k} {v}\n" for k, v in base).encode() for c in cases)


def test_a_good_example_is_not_safe_mode(tmp_path):
    # The same check on the unbroken example: not safe mode, so each broken copy is safe mode
    # because of what was broken.
    for profile in ("h2o", "scale"):
        exe = firmware(profile)
        setup, safe, network = PROFILES[profile]
        (tmp_path / "good.txt").write_text((ROOT / "profiles" / profile / "config.txt.example").read_text())
        mods = [m for m in (setup, safe) if m]
        code = ENTRY + f"MODULES = {mods!r}\nNETWORK = {network}\nPATHS = ['good.txt']\n" + CHECK
        remembered_nvs(tmp_path)
        r = run_code(exe, code, tmp_path)
        line = [x for x in r.stdout.splitlines() if x.startswith("CASE ")][0]
        safe_mode, errors, offline, _, pw = json.loads(line[5:])
        assert (safe_mode, errors, offline) == (False, [], None), (profile, errors)
        assert pw is None  # a good config without appassword: no access point


# --- full boots, one device hour each --------------------------------------------------

HOUR_MS = 3600 * 1000
START_MS = 15000  # app starts net and MQTT 12 s after boot
STEP_MS = 5000  # well inside the watchdog's 15 s, so no step can starve it


def boot_configs(broker, profile):
    from brokenconfigs import example

    base = [(k, v) for k, v in example(profile)]
    net = {"mqttbroker": broker.host, "mqttport": str(broker.port), "ssid": "epx-sim",
           "password": "None"}
    fixed = [(k, net.get(k, v)) for k, v in base]
    if PROFILES[profile][2]:
        fixed.append(("mqttport", str(broker.port)))

    def text(pairs):
        return "".join(f"{k} {v}\n" for k, v in pairs)

    return {
        "no config.txt": None,
        "empty": "",
        "garbage": bytes(range(256)) * 3,
        "no mqttbroker": text([p for p in fixed if p[0] != "mqttbroker"]),
        "mqttname a/b": text([(k, "a/b" if k == "mqttname" else v) for k, v in fixed]),
        # outside safe mode this device would reboot after mqttreboot (600 s) without a broker
        "broker down": text([(k, v) for k, v in fixed if k != "mqttport"]
                            + [("mqttport", str(closed_port())), ("mqttkeepalive", "1")]),
    }


def closed_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_hour(dev):
    for _ in range(HOUR_MS // STEP_MS):
        dev.advance(STEP_MS)
        assert dev.ended is None and len(dev.boots) == 1, dev.output()


@pytest.mark.parametrize("profile", sorted(p for p in PROFILES if PROFILES[p][2]))
def test_safe_mode_runs_an_hour_on_any_config(profile, device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    for label, content in boot_configs(broker, profile).items():
        files = {} if content is None else {"config.txt": content}
        dev = device(profile, files=files, name=re.sub(r"\W", "_", label))
        dev.wait_console(r"safe mode: config.txt broken", timeout=30)
        mark = w.mark()
        dev.advance(START_MS)  # net and MQTT start: at the pace of real I/O
        if label == "mqttname a/b":  # a usable broker: the report reaches it, under the fallback name
            fallback = f"{profile}-{dev.mac[-6:]}"
            got = w.wait_for(f"stat/{fallback}/Log", lambda p: p.startswith("safe mode: "),
                             since=mark, device=dev)[1]
            assert "mqttname: 'a/b' is not a name" in got, got
        elif label == "broker down":
            dev.wait_console(r"mqttkeepalive: 1 is out of range")
            dev.wait_console(r"mqtt: connect: .*; retry in")
        else:
            dev.wait_console(r"safe mode: no usable (ssid|mqttbroker) in config.txt: the setup access point")
        run_hour(dev)
        out = dev.output()
        assert "Traceback" not in out and "exception" not in out, (label, out)
        assert dev.boots[0].get("exit") is None, label
        if label != "mqttname a/b":
            assert not [m for m in w.messages[mark:] if m[0].startswith("stat/")], label
        dev.stop()


def test_scale_sensor_sleeps_in_safe_mode_and_never_crashes(device):
    dev = device("scale", files={"config.txt": "garbage \x00\n"})
    first = dev.wait_exit(1, timeout=30)
    assert first["exit"] == 12  # deep sleep, not a crash
    second = dev.wait_boot(2, timeout=30)
    assert second["reset_cause"] == 4  # DEEPSLEEP_RESET
    assert second["ticks_start_ms"] - first["ticks_start_ms"] >= 3600 * 1000  # the default hour
    assert "Traceback" not in dev.output()
    dev.wait_console(r"safe mode: asleep for 60 min", boot=2, timeout=30)
