"""epx.config, epx.nvram and epx.log inside the host firmware (tests/firmware/coreunit.py):
the config.txt format, every message naming its line, strict booleans, safe mode; typed NVS
values that are written only when they change; bounded log lines."""

import json

import pytest

from epx import build
from fwcode import last_json, run_code

ENTRY = "import sys;sys.path[:]=['.frozen'];import json\n"


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("coreunit")[0]


def run(fw, tmp_path, code, files=None):
    from epx.sim.flash import Flash

    if not (tmp_path / "flash.bin").exists():
        Flash.create(tmp_path / "flash.bin")  # the simulated NVS sizes blobs by its partition
    for name, text in (files or {}).items():
        (tmp_path / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return last_json(run_code(fw, ENTRY + code, tmp_path))


KEYS = """
from epx import config
SSID = config.key("ssid", str)
PASSWORD = config.key("password", str, None)
CAPACITY = config.key("capacity", float)
POLL = config.key("poll", config.int_range(1, 1000), 15)
WATCHDOG = config.key("watchdog", bool, True)
LEVELS = config.key("levelsensors", config.ascending_floats, [100.0])
DRIVER = config.key("driver", config.one_of("direct4", "hoffer6"), "direct4")
COUNT = config.key("count", int, 0)
def result():
    return {"values": {k: v.value for k, v in config._keys.items()},
            "errors": config.errors, "warnings": config.warnings, "safe": config.safe_mode}
config.load()
print(json.dumps(result()))
"""


def test_a_good_config(fw, tmp_path):
    out = run(fw, tmp_path, KEYS, {"config.txt": """\
# the tank in the garden
ssid My Home  Network
password   s3cret # not a comment: passwords may hold '#'

capacity 1500.5
\tpoll\t20
watchdog OFF
levelsensors 20, 40,60,80,100
driver hoffer6
count -3
"""})
    assert out["errors"] == [] and out["warnings"] == [] and out["safe"] is False
    assert out["values"] == {
        "ssid": "My Home  Network", "password": "s3cret # not a comment: passwords may hold '#'",
        "capacity": 1500.5, "poll": 20, "watchdog": False, "levelsensors": [20, 40, 60, 80, 100],
        "driver": "hoffer6", "count": -3}


def test_defaults_and_windows_line_ends(fw, tmp_path):
    out = run(fw, tmp_path, KEYS, {"config.txt": "ssid x\r\ncapacity 10\r\n"})
    assert out["errors"] == [] and out["safe"] is False
    assert out["values"]["password"] is None and out["values"]["poll"] == 15
    assert out["values"]["watchdog"] is True and out["values"]["ssid"] == "x"


def test_every_problem_names_its_line(fw, tmp_path):
    out = run(fw, tmp_path, KEYS, {"config.txt": """\
ssid home
capacity abc
watchdog None
poll 5000
levelsensors 20,60,40
driver minir9
colour blue
count 1.5
ssid other
"""})
    assert out["errors"] == [
        "config.txt:2: capacity: 'abc' is not a number",
        "config.txt:3: watchdog: 'None' is not a boolean (0/1/on/off/true/false)",
        "config.txt:4: poll: 5000 is out of range 1..1000",
        "config.txt:5: levelsensors: '20,60,40' is not ascending",
        "config.txt:6: driver: 'minir9' is not one of direct4, hoffer6",
        "config.txt:8: count: '1.5' is not an integer",
        "config.txt:9: ssid: repeated (first on line 1)",
    ]
    assert out["warnings"] == ["config.txt:7: colour: unknown key (ignored)"]
    assert out["safe"] is True
    # A bad value never becomes a value: `watchdog None` is not "on" by accident, it is
    # the default (and safe mode says why).
    assert out["values"]["watchdog"] is True and out["values"]["poll"] == 15
    assert out["values"]["ssid"] == "home"


@pytest.mark.parametrize("text", ["None", "2", "yes", "onn", "-1"])
def test_booleans_are_strict(fw, tmp_path, text):
    out = run(fw, tmp_path, KEYS, {"config.txt": f"ssid x\ncapacity 1\nwatchdog {text}\n"})
    assert out["errors"] == [f"config.txt:3: watchdog: {text!r} is not a boolean (0/1/on/off/true/false)"]


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999", "1,5", "0x10"])
def test_numbers_are_finite_decimals(fw, tmp_path, text):
    out = run(fw, tmp_path, KEYS, {"config.txt": f"ssid x\ncapacity {text}\n"})
    assert out["errors"] == [f"config.txt:2: capacity: {text!r} is not a number"]


def test_empty_values_are_errors(fw, tmp_path):
    out = run(fw, tmp_path, KEYS, {"config.txt": "ssid\ncapacity 1\npassword  \t \nwatchdog\n"})
    assert out["errors"] == [
        "config.txt:1: ssid: empty value (required)",
        "config.txt:3: password: empty value (leave the line out for the default)",
        "config.txt:4: watchdog: empty value (leave the line out for the default)",
    ]
    assert out["safe"] is True and out["values"]["ssid"] is None


def test_control_characters_are_refused_without_echoing_the_value(fw, tmp_path):
    lines = ["ssid home", "capacity 1", "password ab\x00cdefgh", "ssid2 a\x1bb", "count 1\r2",
             "password2 caf\u0085", "x \x7f", "driver\tdirect4", "levelsensors 1,\t2"]
    out = run(fw, tmp_path, KEYS, {"config.txt": "\n".join(lines) + "\n"})
    assert out["errors"] == [
        "config.txt:3: control character 0x00", "config.txt:4: control character 0x1b",
        "config.txt:5: control character 0x0d", "config.txt:6: control character 0x85",
        "config.txt:7: control character 0x7f"]
    assert out["values"]["password"] is None and out["values"]["count"] == 0
    assert out["values"]["driver"] == "direct4"  # a tab is whitespace, not a control
    assert out["values"]["levelsensors"] == [1.0, 2.0]


def test_a_byte_order_mark_is_skipped_at_the_start_only(fw, tmp_path):
    bom = "\ufeff".encode()
    out = run(fw, tmp_path, KEYS, {"config.txt": bom + b"ssid home\ncapacity 3\n"})
    assert out["errors"] == [] and out["warnings"] == [] and out["values"]["ssid"] == "home"
    out = run(fw, tmp_path, KEYS, {"config.txt": b"ssid home\n" + bom + b"capacity 3\n"})
    assert out["warnings"] == ["config.txt:2: \ufeffcapacity: unknown key (ignored)"]


MEANING = """
from epx import config
K = {"name": config.key("mqttname", config.name), "host": config.key("mqttbroker", config.host),
     "hosts": config.key("nodes", config.hosts),
     "ssid": config.key("ssid", config.ssid), "pw": config.key("password", config.wifi_password)}
got = []
for kind, text in CASES:
    try:
        got.append(K[kind].parse(text))
    except ValueError as e:
        got.append("error: " + str(e))
print(json.dumps(got))
"""

# What each protocol allows, from its standard, not from epx.config.
VALID = [
    ("name", "h2o"), ("name", "Tank_2-garden"), ("name", "x" * 32),
    ("host", "broker"), ("host", "mqtt.example.com"), ("host", "a-1.b2"), ("host", "3com.net"),
    ("host", "x" * 63 + ".com"), ("host", ".".join(["a" * 63] * 3) + "." + "b" * 61),
    ("host", "192.168.1.2"), ("host", "0.0.0.0"), ("host", "255.255.255.255"),
    ("ssid", "My Home  Network"), ("ssid", "x" * 32), ("ssid", "ç" * 16), ("ssid", "(wired)"),
    ("pw", "None"), ("pw", "12345678"), ("pw", "p" * 63), ("pw", "a b ~!@#$%^&*()"),
    ("pw", "0123456789abcdefABCDEF" + "0" * 42),
]
# mqttbroker: the nodes of a cluster, host[:port] each (a TCP port is 1-65535, RFC 793)
NODES = [("broker", [["broker", None]]), ("a.example.com:8883, 10.0.0.2",
          [["a.example.com", 8883], ["10.0.0.2", None]]),
         ("b:1,b:65535,c", [["b", 1], ["b", 65535], ["c", None]])]
BAD_NODES = {
    "a,,b": "error: 'a,,b' has an empty entry (host[:port],host[:port]...)",
    "a:0": "error: 'a:0': the port is not a number 1..65535",
    "a:65536": "error: 'a:65536': the port is not a number 1..65535",
    "a:x": "error: 'a:x': the port is not a number 1..65535",
    "a,b:1883,b:1883": "error: 'a,b:1883,b:1883' names b:1883 twice",
    ":1883": "error: ':1883' has an empty entry (host[:port],host[:port]...)",
    "a,bro_ker": "error: 'bro_ker' is not a host name or IPv4 address",
    "[::1]:1883": "error: '[::1]' is not a host name or IPv4 address",  # IPv4 only
}
INVALID = [  # MQTT 3.1.1 4.7: / + # are topic separators and wildcards
    ("name", "a/b"), ("name", "a+"), ("name", "#"), ("name", "my tank"), ("name", "x" * 33),
    ("name", "tank.1"), ("name", "çafé"),
    # RFC 1123 2.1 / RFC 952
    ("host", "-broker"), ("host", "broker-"), ("host", "bro_ker"), ("host", "a..b"),
    ("host", "x" * 64 + ".com"), ("host", ".".join(["a" * 63] * 4)), ("host", "broker."),
    ("host", "192.168.1.256"), ("host", "1.2.3"), ("host", "1.2.3.4.5"), ("host", "0001.2.3.4"),
    ("host", "broker:1883"), ("host", "[::1]"), ("host", "a b"),
    # IEEE 802.11: an SSID is at most 32 octets
    ("ssid", "x" * 33), ("ssid", "ç" * 17),
    # IEEE 802.11i: passphrase 8-63 printable ASCII, or a 256-bit PSK as 64 hex digits
    ("pw", "1234567"), ("pw", "p" * 64), ("pw", "p" * 65), ("pw", "pässwort"), ("pw", "g" * 64),
]


def test_values_checked_by_meaning(fw, tmp_path):
    nodes = [("hosts", t) for t, _ in NODES] + [("hosts", t) for t in BAD_NODES]
    got = run(fw, tmp_path, f"CASES = {VALID + INVALID + nodes!r}\n" + MEANING)
    got, got_nodes = got[:-len(nodes)], got[-len(nodes):]
    assert got_nodes == [v for _, v in NODES] + list(BAD_NODES.values())
    for (kind, text), value in zip(VALID, got):
        assert value == (None if text == "None" else text), (kind, text, value)
    for (kind, text), value in zip(INVALID, got[len(VALID):]):
        assert isinstance(value, str) and value.startswith("error: "), (kind, text, value)
    errors = dict(zip([t for _, t in INVALID], got[len(VALID):]))
    assert errors["a/b"] == "error: 'a/b' is not a name of 1-32 letters, digits, _ or -"
    assert errors["broker:1883"] == "error: 'broker:1883' is not a host name or IPv4 address"
    assert errors["192.168.1.256"] == "error: '192.168.1.256' is not an IPv4 address"
    assert errors["x" * 33] == "error: an SSID is 1-32 bytes, this one 33"
    # a refused password is not repeated in the error (it lands in logs and on MQTT)
    assert "1234567" not in errors["1234567"] and "7 characters" in errors["1234567"]


def test_missing_or_unreadable_file_is_safe_mode(fw, tmp_path):
    out = run(fw, tmp_path, KEYS)
    assert out["safe"] is True
    assert out["errors"][0].startswith("config.txt: cannot read")
    assert "config.txt: ssid: missing (required)" in out["errors"]


def test_binary_garbage_is_named_and_loses_nothing_else(fw, tmp_path):
    out = run(fw, tmp_path, KEYS, {"config.txt": b"ssid x\n\xff\xfe\x00 junk\n# caf\xe9\ncapacity 2\n"})
    assert out["values"]["ssid"] == "x" and out["values"]["capacity"] == 2.0
    assert out["errors"] == ["config.txt:2: not UTF-8 text"] and out["safe"] is True


def test_overlong_lines_are_errors_and_cost_no_memory(fw, tmp_path):
    huge = "ssid " + "x" * 2000000 + "\n"
    out = run(fw, tmp_path, KEYS, {"config.txt": "capacity 5\n" + huge + "ssid ok\n" + "y" * 511 + "\n"})
    assert out["errors"] == ["config.txt:2: longer than 512 characters"]
    assert out["warnings"] == ["config.txt:4: %s: unknown key (ignored)" % ("y" * 511)]
    assert out["values"]["ssid"] == "ok" and out["values"]["capacity"] == 5.0


def test_declaring_keys_twice_or_late_is_refused(fw, tmp_path):
    out = run(fw, tmp_path, """
from epx import config
config.key("a", int, 1)
errors = []
for name in ("a", "b"):
    try:
        if name == "b":
            config.load()
        config.key(name, int, 1)
    except (ValueError, RuntimeError) as e:
        errors.append(str(e))
print(json.dumps(errors))
""")
    assert out == ["config key a declared twice", "config key b declared after config.txt was read"]


CHECK = KEYS.replace("config.load()\nprint(json.dumps(result()))\n", """
before = result()
checked = [config.check(t) for t in TEXTS]
print(json.dumps({"checked": checked, "same": result() == before}))
""")


def test_check_reports_what_load_would_and_changes_nothing(fw, tmp_path):
    good = "ssid other\ncapacity 7\npoll 99\n"
    bad = "\ufeffssid x\ncapacity abc\npoll 5000\nssid y\ncolour blue\nwatchdog\n"
    texts = [good, bad, bad.encode(), b"capacity 1\n\xff\n" + b"q" * 600 + b"\n", ""]
    code = "TEXTS = %r\n" % texts + CHECK
    out = run(fw, tmp_path, code, {"config.txt": "ssid home\ncapacity 1\n"})
    assert out["same"] is True  # the running values (loaded first) are untouched
    assert out["checked"][0] == []
    assert out["checked"][1] == out["checked"][2] == [
        "config.txt:2: capacity: 'abc' is not a number",
        "config.txt:3: poll: 5000 is out of range 1..1000",
        "config.txt:4: ssid: repeated (first on line 1)",
        "config.txt:6: watchdog: empty value (leave the line out for the default)",
    ]
    assert out["checked"][3] == ["config.txt:2: not UTF-8 text", "config.txt:3: longer than 512 characters",
                                 "config.txt: ssid: missing (required)"]
    assert out["checked"][4] == ["config.txt: ssid: missing (required)",
                                 "config.txt: capacity: missing (required)"]
    # the same text as a file, through load(): the very same errors
    loaded = run(fw, tmp_path, KEYS, {"config.txt": bad})
    assert loaded["errors"] == out["checked"][1]


def test_store_refuses_a_bad_candidate_and_stores_a_good_one_whole(fw, tmp_path):
    out = run(fw, tmp_path, "from epx import confstore\n" + KEYS + """
import os
bad = confstore.store("ssid x\\ncapacity many\\n")
files = sorted(os.listdir())
good = confstore.store("ssid x\\ncapacity 3\\n")
with open(confstore.NEW) as f:
    stored = f.read()
print(json.dumps([bad, files, good, stored, sorted(os.listdir())]))
""", {"config.txt": "ssid home\ncapacity 1\n"})
    bad, files, good, stored, after = out
    assert bad == ["config.txt:2: capacity: 'many' is not a number"]
    assert "config.new" not in files and good == [] and stored == "ssid x\ncapacity 3\n"
    assert "config.new" in after and "config.tmp" not in after


def test_remote_edit_keeps_comments_and_get_hides_secrets(fw, tmp_path):
    # epx.confcmd: a change edits config.txt in place; `get` lists it with secrets hidden
    out = run(fw, tmp_path, """
from epx import confcmd, config
for k in ("ssid", "password", "mqttbroker", "mqttport", "ota_key"):
    config.key(k, str, None)
text = b"# the tank\\r\\nssid home\\npassword s3cret-pw\\n\\n  # broker\\nmqttbroker b\\nssid dup\\n\\n"
out = confcmd.edit(text, {"ssid": "new net", "mqttport": "1884", "password": None})
print(json.dumps([out.decode(), confcmd.get(text)]))
""")
    edited, got = out
    assert edited == "# the tank\r\nssid new net\n\n  # broker\nmqttbroker b\nmqttport 1884\n"
    assert got == "ssid home\npassword set\nmqttbroker b\nssid dup\nota_key unset"


NV = """
import esp32
from epx import nvram
writes = []
for name in ("set_i32", "set_blob", "erase_key", "commit"):
    def spy(self, *a, _f=getattr(esp32.NVS, name), _n=name):
        writes.append(_n)
        return _f(self, *a)
    setattr(esp32.NVS, name, spy)
nv = nvram.NVRAM("switch")
"""


def test_nvram_typed_values_and_missing_keys(fw, tmp_path):
    out = run(fw, tmp_path, NV + """
got = [nv.get_int("3"), nv.get_int("3", default=7), nv.get_str("name", "none"), nv.get_bytes("b")]
nv.set_int("3", -5); nv.set_str("name", "Sala de estar ç"); nv.set_bytes("b", bytes(range(256)) * 4)
got += [nv.get_int("3"), nv.get_str("name"), len(nv.get_bytes("b")), nv.get_bytes("b")[:3].hex()]
nv.erase("3"); nv.erase("never-there")
got.append(nv.get_int("3", "gone"))
print(json.dumps(got))
""")
    assert out == [None, 7, "none", None, -5, "Sala de estar ç", 1024, "000102", "gone"]
    nvs = json.loads((tmp_path / "nvs.json").read_text())
    assert nvs["switch"]["name"][0] == "blob" and "3" not in nvs["switch"]


def test_nvram_writes_only_on_change(fw, tmp_path):
    out = run(fw, tmp_path, NV + """
steps = []
for action in (lambda: nv.set_int("3", 1), lambda: nv.set_int("3", 1), lambda: nv.set_int("3", 0),
               lambda: nv.set_str("p", "0:P:-0/+0"), lambda: nv.set_str("p", "0:P:-0/+0"),
               lambda: nv.set_bytes("raw", bytearray(b"ab")), lambda: nv.set_bytes("raw", memoryview(b"ab")),
               lambda: nv.erase("gone")):
    writes.clear()
    action()
    steps.append(list(writes))
print(json.dumps(steps))
""")
    assert out == [["set_i32", "commit"], [], ["set_i32", "commit"], ["set_blob", "commit"], [],
                   ["set_blob", "commit"], [], ["erase_key"]]


def test_nvram_other_errors_are_not_missing_keys(fw, tmp_path):
    # ESP-IDF reads a key by its first 15 characters (not found here), but refuses to
    # store a longer one: that error reaches the caller, it is not a missing key.
    out = run(fw, tmp_path, NV + """
r = [nv.get_int("a-key-longer-than-15", "default")]
try:
    nv.set_int("a-key-longer-than-15", 1)
    r.append(None)
except OSError as e:
    r.append(e.args[1])
print(json.dumps(r))
""")
    assert out == ["default", "ESP_ERR_NVS_KEY_TOO_LONG"]


def test_log_keeps_the_latest_lines_bounded(fw, tmp_path):
    out = run(fw, tmp_path, """
from epx import log
for i in range(100):
    log.info("line %d" % i)
log.warn("x" * 1000)
log.error("last")
lines = log.lines()
print(json.dumps([len(lines), lines[0], len(lines[-2]), lines[-1]]))
""")
    count, first, long_len, last = out
    assert count == 32 and first.endswith(" I line 70") and long_len == 200
    assert last.endswith(" E last")
