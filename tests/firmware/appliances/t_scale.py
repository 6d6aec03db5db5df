# HX711 (viper bit-bang against the pin-level model), weighing, the authenticated
# ESP-NOW messages, replay refusal and the sensor's sequence numbers.
import asyncio
import time
import _simclock
from fwunit import raises as expect_raises
from sim.models import attach
from hx711 import HX711
from epx import netnow, replay
from scale.weigh import weigh, median, NOT_READY, SATURATED

DOUT = 32
SCK = 33
LMK = bytes(range(16))


_cell = None


def cell(**args):
    global _cell
    if _cell is not None:
        _cell.detach()
    args.setdefault("dout", DOUT)
    args.setdefault("sck", SCK)
    args.setdefault("powerdown_us", 5000)  # a loaded host may stall a few hundred us
    _cell = attach("pins", "HX711", args=args)
    return _cell


def wait_ready(hx, limit_ms=2000):
    # The model's conversion clock runs on device time in its own thread.
    start = time.ticks_ms()
    while not hx.ready():
        _simclock.advance(10)
        time.sleep_ms(1)
        assert time.ticks_diff(time.ticks_ms(), start) < limit_ms * 10, "HX711 never ready"


def test_hx711_reads_signed_24_bits():
    m = cell(value=123456)
    hx = HX711(DOUT, SCK)
    for value in (123456, -1, -8388608, 8388607, 0, -654321):
        m.set(value)
        wait_ready(hx)
        assert hx.read() == value
        assert not hx.ready()  # the 25th pulse pulls DOUT high
    assert m.stats()["reads"] == 6 and m.stats()["bad_reads"] == 0


def test_hx711_gain_pulses():
    m = cell()
    m.set(100, gain=128)
    m.set(50, gain=64)
    m.set(25, gain=32)
    hx64 = HX711(DOUT, SCK, gain=64)
    wait_ready(hx64)
    assert hx64.read() == 100  # the first conversion is at gain 128
    wait_ready(hx64)
    assert hx64.read() == 50 and m.gain == 64
    hx32 = HX711(DOUT, SCK, gain=32)
    wait_ready(hx32)
    assert hx32.read() == 50
    wait_ready(hx32)
    assert hx32.read() == 25 and m.gain == 32
    expect_raises(ValueError, HX711, DOUT, SCK, 16)


def test_hx711_not_ready_refused():
    m = cell()
    hx = HX711(DOUT, SCK)
    m.set_stuck()
    e = expect_raises(OSError, hx.read)
    assert m.stats()["reads"] == 0


def test_hx711_power_down_resets_gain():
    m = cell()
    hx = HX711(DOUT, SCK, gain=64)
    wait_ready(hx)
    hx.read()
    assert m.gain == 64
    hx.power_down()
    _simclock.advance(10)
    hx.power_up()
    assert m.gain == 128 and not hx.ready()


def test_median():
    assert median([5, 1, 3]) == 3
    assert median([4, 1, 3, 2]) == 2.5
    assert median([7]) == 7


def run_weigh(hx, samples, a, b):
    # weigh() polls with asyncio.sleep_ms; the clock is pushed meanwhile.
    async def pusher():
        while True:
            await asyncio.sleep_ms(1)
            _simclock.advance(10)

    async def main():
        t = asyncio.create_task(pusher())
        try:
            return await weigh(hx, samples, a, b)
        finally:
            t.cancel()

    return asyncio.run(main())


def test_weigh_calibrated_median():
    m = cell(value=10000)
    hx = HX711(DOUT, SCK)
    w, bad = run_weigh(hx, 5, 0.001, -2.0)
    assert bad == 0 and abs(w - 8.0) < 1e-9, (w, bad)
    assert m.stats()["reads"] == 5


def test_weigh_not_ready():
    m = cell()
    m.set_stuck()
    hx = HX711(DOUT, SCK)
    assert run_weigh(hx, 3, 1.0, 0.0) == (None, NOT_READY)


def test_weigh_saturated():
    m = cell(value=0x7FFFFF)
    hx = HX711(DOUT, SCK)
    assert run_weigh(hx, 3, 1.0, 0.0) == (None, SATURATED)


# --- messages -------------------------------------------------------------------------

def test_message_round_trip():
    payload = netnow.encode([("Weight", "12.345"), ("Malfunction", "0")])
    msg = netnow.pack(netnow.DATA, 0x10002, payload, LMK)
    kind, seq, body = netnow.unpack(msg, LMK)
    assert (kind, seq) == (netnow.DATA, 0x10002)
    assert netnow.decode(body) == [("Weight", "12.345"), ("Malfunction", "0")]
    ack = netnow.pack(netnow.ACK, 0x10002, b"", LMK)
    assert netnow.unpack(ack, LMK) == (netnow.ACK, 0x10002, b"")


def refused(msg, key=LMK):
    return str(expect_raises(netnow.Refused, netnow.unpack, msg, key))


def test_message_refusals():
    msg = netnow.pack(netnow.DATA, 7, b"Weight\n1.000", LMK)
    assert refused(msg[:10]) == "length 10"
    assert refused(b"\x01" + msg[1:]) == "version 1"  # the original's format
    assert refused(msg[:1] + b"\x09" + msg[2:]) == "type 9"
    assert refused(msg, bytes(16)) == "tag"  # another pair's key
    forged = bytearray(msg)
    forged[-TAG_AT] ^= 1
    assert refused(bytes(forged)) == "tag"
    renumbered = msg[:5] + b"\x08" + msg[6:]
    assert refused(renumbered) == "tag"


TAG_AT = 10  # a payload byte


def test_replay():
    # the manager's guard: a repeat of the last number is acked again, an older one refused
    r = replay.Guard("t_scale", "seq", bits=32)
    assert r.check(5) == replay.NEW
    r.store(5)
    assert r.check(5) == replay.REPEAT
    assert r.check(6) == replay.NEW
    r.store(0xFFFFFFFF)  # the frame's field at its widest: kept, not wrapped
    assert replay.Guard("t_scale", "seq", bits=32).check(0xFFFFFFFF) == replay.REPEAT
    e = expect_raises(replay.Refused, r.check, 5)
    assert str(e) == "replayed: counter 5, last accepted 4294967295"


def test_keys_and_macs():
    assert netnow.key("000102030405060708090a0b0c0d0e0f") == LMK
    assert "32 hex" in str(expect_raises(ValueError, netnow.key, "secret"))
    expect_raises(ValueError, netnow.key, "00" * 15)
    assert netnow.mac("AA:bb:cc:00:11:22") == b"\xaa\xbb\xcc\x00\x11\x22"
    expect_raises(ValueError, netnow.mac, "aa:bb")


# --- sequence numbers -------------------------------------------------------------------

class Memory:
    def __init__(self):
        self.ints = {}

    def get_int(self, key, default=None):
        return self.ints.get(key, default)

    def set_int(self, key, value):
        self.ints[key] = value


def test_sequence_survives_deep_sleep_and_power_cycle():
    import sim
    from machine import RTC, PWRON_RESET, DEEPSLEEP_RESET
    from scale.sequence import Sequence

    sim.BOOT["reset_cause"] = PWRON_RESET
    RTC().memory(b"epx\x01")
    nv = Memory()
    s = Sequence(nv)
    first = s.next()
    assert first == 1 and nv.ints["epoch"] == 0
    assert RTC().memory()[:4] == b"epx\x01"  # epx.app's bytes left alone
    # deep sleep: a new boot finds the count in RTC memory
    sim.BOOT["reset_cause"] = DEEPSLEEP_RESET
    s = Sequence(nv)
    assert s.next() == 2
    # power cycle: RTC memory is noise, a new epoch from NVS keeps numbers growing
    sim.BOOT["reset_cause"] = PWRON_RESET
    s = Sequence(nv)
    assert s.next() == (1 << 16) + 1 and nv.ints["epoch"] == 1
    s.count = 0xFFFF
    assert s.next() == (2 << 16) + 1
