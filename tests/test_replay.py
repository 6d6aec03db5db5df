"""Replay protection (epx.replay) on every signed path: the guard itself inside the firmware
(counter range, NVS format, the migration of the old i32 counter, the real port's i32 limit),
then signed diagnostics and OTA requests on a simulated `bare` device through a real
mosquitto. The ESP-NOW path is in test_scale_device.py."""

import json

import pytest

from epx import diag, ota
from epx.errors import EpxError
from fwcode import last_json, run_code

NAME = "rp"
KEY = "k3y-replay"
START_MS = 12000
# Each accepted in turn; none of the messages before it may be accepted after it.
COUNTERS = [0, 2**31 - 1, 2**31, 2**32, 2**63, 2**64 - 1]
REFUSED = [-1, -(2**31), 2**64, 2**65]


@pytest.fixture
def coreunit(tmp_path):
    from epx import build
    from epx.sim.flash import Flash

    Flash.create(tmp_path / "flash.bin")  # the simulated NVS sizes blobs by its partition
    return build.build_unix("coreunit")[0]


# The real port's NVS.set_i32 raises OverflowError outside 32 bits; the guard must never ask.
STRICT_I32 = """
import esp32, json
_set = esp32.NVS.set_i32
def set_i32(self, key, value):
    if not -2**31 <= value < 2**31:
        raise OverflowError("overflow converting long int to machine word")
    return _set(self, key, value)
esp32.NVS.set_i32 = set_i32
from epx import replay
def verdict(g, c):
    try:
        return g.check(c)
    except replay.Refused as e:
        return str(e)
"""


def test_guard_counters(coreunit, tmp_path):
    out = last_json(run_code(coreunit, STRICT_I32 + f"""
g = replay.Guard("epx", "otactr")
steps = []
for c in {COUNTERS!r}:
    g.take(c)
    steps.append([verdict(g, e) for e in {COUNTERS!r} if e <= c])
bad = [verdict(replay.Guard("t", "c"), c) for c in {REFUSED!r}]
g32 = replay.Guard("t", "seq", bits=32)
g32.store(2**32 - 1)
print(json.dumps([steps, bad, verdict(g32, 2**32 - 1), verdict(g32, 2**32), g.last()]))
""", tmp_path))
    steps, bad, repeat32, over32, last = out
    for c, step in zip(COUNTERS, steps):
        older = [e for e in COUNTERS if e < c]
        assert step == [f"replayed: counter {e}, last accepted {c}" for e in older] + [2], c  # REPEAT
    assert bad == [f"counter {c} outside 0..2**64-1" for c in REFUSED]
    assert (repeat32, over32) == (2, "counter 4294967296 outside 0..2**32-1")
    assert last == 2**64 - 1
    nvs = json.loads((tmp_path / "nvs.json").read_text())["epx"]
    # 8 bytes big-endian, and the old i32 saturated for firmware that still reads it
    assert nvs["otactr64"][0] == "blob"
    assert __import__("base64").b64decode(nvs["otactr64"][1]) == (2**64 - 1).to_bytes(8, "big")
    assert nvs["otactr"] == ["i32", 2**31 - 1]


def test_guard_parses_only_decimal_digits(coreunit, tmp_path):
    texts = ["0", "18446744073709551615", "-1", "+5", "0x10", "1e3", "", " 7", "٣",
             "1" * 21]
    out = last_json(run_code(coreunit, STRICT_I32 + f"""
got = []
for t in {texts!r}:
    try:
        got.append(replay.parse(t))
    except replay.Refused as e:
        got.append(str(e))
print(json.dumps(got))
""", tmp_path))
    assert out[:2] == [0, 2**64 - 1]
    assert all(isinstance(x, str) and "not a decimal number" in x for x in out[2:]), out


@pytest.mark.parametrize("old, last", [
    (1764201600, 1764201600),  # a Unix-time counter kept by the firmware before
    (-2147483648, 2**31),  # what the old simulator made of 2**31 (the port raised instead)
    (-1, 2**32 - 1),
])
def test_old_i32_counter_migrates(coreunit, tmp_path, old, last):
    (tmp_path / "nvs.json").write_text(json.dumps({"epx": {"otactr": ["i32", old]}}))
    out = last_json(run_code(coreunit, STRICT_I32 + f"""
g = replay.Guard("epx", "otactr")
print(json.dumps([g.last(), verdict(g, {last}), verdict(g, {last} + 1)]))
g.take({last} + 1)
""", tmp_path))
    assert out == [last, 2, 1]  # the old last one is a repeat, the next is new
    # after an upgrade and a rollback, the old firmware finds its i32 no lower than before
    nvs = json.loads((tmp_path / "nvs.json").read_text())["epx"]
    assert nvs["otactr"][1] == min(last + 1, 2**31 - 1) and nvs["otactr"][1] >= old


def test_rollback_to_old_firmware_then_upgrade_keeps_the_highest(coreunit, tmp_path):
    # the old firmware took 2e9 in its i32 after the new one had stored 1e9 in the blob
    (tmp_path / "nvs.json").write_text(json.dumps({"epx": {
        "otactr": ["i32", 2000000000],
        "otactr64": ["blob", __import__("base64").b64encode((10**9).to_bytes(8, "big")).decode()]}}))
    out = last_json(run_code(coreunit, STRICT_I32 + """
g = replay.Guard("epx", "otactr")
print(json.dumps([g.last(), verdict(g, 1500000000)]))
""", tmp_path))
    assert out == [2000000000, "replayed: counter 1500000000, last accepted 2000000000"]


# --- on a device: signed diagnostics and OTA requests ---------------------------------

@pytest.fixture
def bare(device, broker, mqtt_watch, tmp_path):
    def make(nvs=None):
        nvs_csv = None
        if nvs is not None:
            nvs_csv = tmp_path / "nvs.csv"
            nvs_csv.write_text(nvs)
        keys = {"ssid": "epx-sim", "password": "None", "mqttbroker": broker.host,
                "mqttport": broker.port, "mqttname": NAME, "watchdog": 0, "ota_key": KEY}
        w = mqtt_watch(broker)
        dev = device("bare", config="".join(f"{k} {v}\n" for k, v in keys.items()),
                     nvs_csv=nvs_csv and str(nvs_csv))
        dev.wait_console(r"epx .*: power on")
        dev.advance(START_MS)
        w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
        w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), device=dev)
        return dev, w
    return make


def signed_diag(counter):
    """Signed as epx.diag wants, for any counter (diag.sign refuses those outside the range)."""
    if 0 <= counter < 2**64:
        return diag.sign(KEY, NAME, "resetstats", counter)
    mac = __import__("hmac").new(KEY.encode(), f"{NAME} resetstats {counter}".encode(), "sha256")
    return f"resetstats {counter} {mac.hexdigest()}"


def ask_diag(dev, w, payload):
    m = w.mark()
    w.publish(f"cmnd/{NAME}/OTA", payload)
    return w.wait_for(f"stat/{NAME}/Log", since=m, device=dev)[1]


def signed_ota(counter, version="bare-99.0"):
    req = {"url": "http://127.0.0.1:9/x", "size": 4096, "sha256": "ab" * 32, "profile": "bare",
           "version": version, "counter": counter}
    req["hmac"] = __import__("hmac").new(KEY.encode(), ota.message(NAME, req).encode(),
                                         "sha256").hexdigest()
    return json.dumps(req)


def ask_ota(dev, w, payload):
    """The device's last word on a request: refused, or failed (accepted, then the download
    from a closed port failed)."""
    m = w.mark()
    w.publish(f"cmnd/{NAME}/OTA", payload)
    got = w.wait_for(f"stat/{NAME}/OTA", lambda p: json.loads(p)["state"] in ("refused", "failed"),
                     since=m, device=dev)[1]
    status = json.loads(got)
    return "accepted" if status["state"] == "failed" else status["error"]


def test_signed_diagnostics_counters(bare):
    dev, w = bare()
    for c in REFUSED[:2]:
        assert ask_diag(dev, w, signed_diag(c)).endswith(f"refused: counter '{c}' is not a decimal number")
    for c in REFUSED[2:]:
        assert ask_diag(dev, w, signed_diag(c)).endswith(f"refused: counter {c} outside 0..2**64-1")
        with pytest.raises(EpxError, match=r"must be 0..2\*\*64-1"):
            diag.sign(KEY, NAME, "resetstats", c)  # the host tool never sends one
    sent = []
    for c in COUNTERS:
        assert ask_diag(dev, w, signed_diag(c)) == "stats reset", c
        sent.append(c)
        for old in sent:
            reply = ask_diag(dev, w, signed_diag(old))
            assert reply.endswith(f"refused: replayed: counter {old}, last accepted {c}"), reply
    # OTA shares the counter: nothing at or below 2**64-1 is taken any more, even after a reboot
    dev.power_cycle()
    dev.wait_boot(2, timeout=20)
    dev.wait_console(r"epx .*: power on", boot=2, timeout=20)
    m = w.mark()
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), since=m, device=dev)
    assert ask_ota(dev, w, signed_ota(2**63 + 1)) == \
        f"replayed: counter {2**63 + 1}, last accepted {2**64 - 1}"
    assert ask_diag(dev, w, signed_diag(2**63)).endswith(f"last accepted {2**64 - 1}")
    assert dev.nvs()["epx"]["otactr"] == ["i32", 2**31 - 1]


def test_signed_ota_request_counters(bare):
    dev, w = bare()
    for c in REFUSED:
        assert ask_ota(dev, w, signed_ota(c)) == f"counter {c} outside 0..2**64-1"
    sent = []
    for c in COUNTERS:
        assert ask_ota(dev, w, signed_ota(c)) == "accepted", c
        sent.append(c)
        for old in sent:
            assert ask_ota(dev, w, signed_ota(old)) == f"replayed: counter {old}, last accepted {c}"
        assert ask_diag(dev, w, signed_diag(c)).endswith(f"replayed: counter {c}, last accepted {c}")


def test_an_old_i32_counter_still_refuses_what_it_refused(bare):
    # NVS as the firmware before the 64-bit counters left it (esp-idf-nvs-partition-gen CSV)
    dev, w = bare(nvs="key,type,encoding,value\nepx,namespace,,\notactr,data,i32,1764201600\n")
    assert ask_diag(dev, w, signed_diag(1764201600)).endswith("last accepted 1764201600")
    assert ask_diag(dev, w, signed_diag(1764201601)) == "stats reset"
    assert ask_diag(dev, w, signed_diag(5)).endswith("last accepted 1764201601")
