"""Replay protection (epx.replay) on every signed path: the guard itself inside the firmware
(counter range, NVS format, the migration of the old i32 counter, the real port's i32 limit),
then signed diagnostics and OTA requests on a simulated `bare` device through a real
mosquitto. The ESP-NOW path is in test_scale_device.py."""

import json
import time

import pytest

from epx import diag, ota
from epx.errors import EpxError
from fwcode import last_json, run_code

NAME = "rp"
KEY = "k3y-replay"
START_MS = 12000
# Each accepted in turn; none of the messages before it may be accepted after it.
COUNTERS = [0, 2**31 - 1, 2**31, 2**32, 2**63, 2**64 - 1]
# The same on a device, whose signed paths take at most 2**32 above the last counter: the
# last step is exactly that far.
DEVICE_COUNTERS = [0, 2**31 - 1, 2**31, 2**32, 2**33, 2**33 + 2**32]
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
    for c in DEVICE_COUNTERS:
        assert ask_diag(dev, w, signed_diag(c)) == "stats reset", c
        sent.append(c)
        for old in sent:
            reply = ask_diag(dev, w, signed_diag(old))
            assert reply.endswith(f"refused: replayed: counter {old}, last accepted {c}"), reply
    # OTA shares the counter: nothing at or below the last is taken any more, even after a reboot
    top = DEVICE_COUNTERS[-1]
    dev.power_cycle()
    dev.wait_boot(2, timeout=20)
    dev.wait_console(r"epx .*: power on", boot=2, timeout=20)
    m = w.mark()
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), since=m, device=dev)
    assert ask_ota(dev, w, signed_ota(top - 1)) == f"replayed: counter {top - 1}, last accepted {top}"
    assert ask_diag(dev, w, signed_diag(2**32)).endswith(f"last accepted {top}")
    assert dev.nvs()["epx"]["otactr"] == ["i32", 2**31 - 1]


def test_signed_ota_request_counters(bare):
    dev, w = bare()
    for c in REFUSED:
        assert ask_ota(dev, w, signed_ota(c)) == f"counter {c} outside 0..2**64-1"
    sent = []
    for c in DEVICE_COUNTERS:
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


# --- no lock-out by one message ----------------------------------------------------------

def test_counters_are_bounded_and_belong_to_their_key(coreunit, tmp_path):
    # A device upgraded from firmware that kept an i32: key a inherits it (adopt at start).
    (tmp_path / "nvs.json").write_text(json.dumps({"epx": {"otactr": ["i32", 1764201600]}}))
    out = last_json(run_code(coreunit, STRICT_I32 + """
a, b = replay.key_id("key-a"), replay.key_id("key-b")
def guard(owner):
    return replay.Guard("epx", "otactr", jump_bits=32, owner=owner)
guard(a).adopt()
got = [len(a), a != b, guard(a).last(), guard(b).last()]
got.append(verdict(guard(a), 2**64 - 1))
got.append(verdict(guard(a), 1764201600 + 2**32 + 1))
guard(a).take(1764201600 + 2**32)  # a clock 136 years ahead: within the bound, taken
got.append(verdict(guard(a), 1764201601))
got.append(verdict(guard(b), 1764201601))  # a new key starts afresh
guard(b).take(1764201601)
got += [guard(a).last(), guard(b).last(), verdict(guard(a), 1764201602)]
got.append(verdict(guard(b), 2**32 + 1764201601))  # exactly the bound
print(json.dumps(got))
""", tmp_path))
    assert out[:4] == [15, True, 1764201600, None]
    assert out[4] == f"counter {2**64 - 1} is more than 2**32 above the last accepted 1764201600 " \
        "(a sender's clock wrong?)"
    assert out[5].startswith(f"counter {1764201600 + 2**32 + 1} is more than 2**32 above")
    assert out[6] == f"replayed: counter 1764201601, last accepted {1764201600 + 2**32}"
    assert out[7] == 1  # NEW
    # back on key a: its counter is where it was; key b's own is its own
    assert out[8:11] == [1764201600 + 2**32, 1764201601,
                         f"replayed: counter 1764201602, last accepted {1764201600 + 2**32}"]
    assert out[11] == 1
    # firmware before this one still finds the counter of the key that signed last
    nvs = json.loads((tmp_path / "nvs.json").read_text())["epx"]
    assert nvs["otactr"] == ["i32", 1764201601]


def test_a_counter_of_2_64_minus_1_is_refused_and_the_device_managed_after(bare):
    dev, w = bare()
    now = int(time.time())
    assert ask_diag(dev, w, signed_diag(now)) == "stats reset"
    reply = ask_diag(dev, w, signed_diag(2**64 - 1))
    assert reply.endswith(f"refused: counter {2**64 - 1} is more than 2**32 above the last "
                          f"accepted {now} (a sender's clock wrong?)"), reply
    assert ask_ota(dev, w, signed_ota(2**64 - 1)).startswith(f"counter {2**64 - 1} is more than")
    assert ask_diag(dev, w, signed_diag(now + 1)) == "stats reset"
    dev.power_cycle()
    dev.wait_boot(2, timeout=20)
    m = w.mark()
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), since=m, device=dev)
    assert ask_ota(dev, w, signed_ota(now + 2)) == "accepted"
    assert ask_diag(dev, w, signed_diag(now + 3)) == "stats reset"


def test_a_new_ota_key_from_the_setup_portal_undoes_a_counter_too_far_ahead(device, broker,
                                                                            mqtt_watch):
    """A genuine message from a clock a century ahead is within the bound and taken: later
    messages are replays. Whoever holds the access point's password gives the device a new
    ota_key on the portal; under it the device is managed again."""
    from devconfig import config_text
    from test_portal import AP_PASSWORD, HOME, NEIGHBOUR, form, http, open_portal, status

    w = mqtt_watch(broker)
    dev = device("bare", config=config_text(broker, NAME, ssid=HOME["ssid"], password=HOME["password"],
                                            ota_key=KEY, appassword=AP_PASSWORD, apfallback=1,
                                            watchdog=0))
    dev.wait_boot(1)
    dev.call("wifi.set", aps=[HOME])
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), device=dev)
    now = int(time.time())
    ahead = now + 100 * 365 * 86400
    assert ask_diag(dev, w, signed_diag(now)) == "stats reset"
    assert ask_diag(dev, w, signed_diag(ahead)) == "stats reset"
    assert ask_diag(dev, w, signed_diag(now + 1)).endswith(
        f"replayed: counter {now + 1}, last accepted {ahead}")
    dev.call("wifi.set", aps=[NEIGHBOUR])  # the operator takes the device where its network is not
    m = dev.console_mark()
    dev.advance(70000)
    dev.wait_console(r"ap: (\S+) open", since=m)
    dev.join_ap(AP_PASSWORD)
    new_key = "a n3w key"
    answer = http(dev.portal_address(), form(ssid="neighbour", password=NEIGHBOUR["password"],
                                             mqttbroker=broker.host, mqttport=broker.port,
                                             mqttname=NAME, ota_key=new_key, appassword=AP_PASSWORD))
    assert status(answer) == 200, answer
    dev.wait_boot(2, timeout=30)
    m = w.mark()
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("config: candidate kept"), since=m, device=dev)
    assert ask_diag(dev, w, diag.sign(new_key, NAME, "resetstats", now + 2)) == "stats reset"
    assert ask_diag(dev, w, signed_diag(now + 3)).endswith("refused: bad signature")
