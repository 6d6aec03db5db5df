# The PZEM-004T driver against its model, and its frames against known vectors.
from appliances import Wire
from fwunit import raises as expect_raises
from pzem import PZEM, PZEMError, crc16, GENERAL
from sim.models import attach


class Capture:
    def __init__(self, rx=b""):
        self.sent = []
        self.rx = bytearray(rx)

    def write(self, buf):
        self.sent.append(bytes(buf))

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx[0:n] = b""
        return n or None


def model(**values):
    return attach("uart2", "PZEM", args=values)


def meter(**values):
    m = model(**values)
    return m, PZEM(Wire(m))


def test_crc_vectors():
    assert crc16(b"\x01\x04\x00\x00\x00\x0a", 6) == 0x0D70
    assert crc16(b"\x01\x42", 2) == 0x1180


def test_request_frames():
    wire = Capture()
    p = PZEM(wire, addr=1)
    p.request_readings()
    p.request_reset()
    p.request_address()
    assert wire.sent == [b"\x01\x04\x00\x00\x00\x0a\x70\x0d", b"\x01\x42\x80\x11",
                         b"\x01\x03\x00\x02\x00\x01\x25\xca"], wire.sent


def test_readings():
    m, p = meter(voltage=231.4, current=12.345, power=2701.9, energy=123456, frequency=49.9,
                 pf=0.87)
    p.request_readings()
    assert p.pending
    assert p.poll() is True
    assert not p.pending
    got = (p.voltage, p.current, p.power, p.energy, p.frequency, p.pf, p.alarm)
    for have, want in zip(got, (231.4, 12.345, 2701.9, 123456, 49.9, 0.87, 0)):
        assert abs(have - want) < 1e-9, got


def test_address_and_reset():
    m, p = meter(address=7, energy=99)
    p.request_address()
    assert p.poll() and p.address == 7
    p.request_reset()
    assert p.poll()
    assert m.energy() == 0 and m.resets == 1


def test_no_answer_times_out():
    m, p = meter()
    m.set_fault("silent")
    p.request_readings()
    assert p.poll() is False
    e = expect_raises(PZEMError, p.expire)
    assert str(e) == "no reply"
    assert not p.pending
    p.expire()  # nothing pending: nothing to say


def test_bad_crc_refused():
    m, p = meter(voltage=230.0)
    m.set_fault("badcrc")
    p.request_readings()
    e = expect_raises(PZEMError, p.poll)
    assert str(e) == "bad CRC"
    assert p.voltage is None


def test_short_reply():
    m, p = meter()
    m.set_fault("short")
    p.request_readings()
    assert p.poll() is False
    assert str(expect_raises(PZEMError, p.expire)) == "short reply"


def test_reply_in_pieces():
    m = model(voltage=229.0)
    wire = Capture()
    p = PZEM(wire)
    p.request_readings()
    m.write(wire.sent[-1])
    whole = bytes(m.rx)
    for i in range(len(whole) - 1):
        wire.rx.append(whole[i])
        assert p.poll() is False
    wire.rx.append(whole[-1])
    assert p.poll() is True and p.voltage == 229.0


def test_exception_reply():
    body = bytes((GENERAL, 0x84, 0x02))
    crc = crc16(body, 3)
    p = PZEM(Capture())
    p.request_readings()
    p._uart.rx.extend(body + bytes((crc & 0xFF, crc >> 8)))
    assert str(expect_raises(PZEMError, p.poll)) == "exception 2"


def test_late_reply_flushed():
    m, p = meter(voltage=240.0)
    m.set_fault("silent")
    p.request_readings()
    assert str(expect_raises(PZEMError, p.expire)) == "no reply"
    m.reply(b"\x01\x04\x14garbage")  # the late answer to the expired request
    m.set_fault(None)
    p.request_readings()
    assert p.poll() is True and p.voltage == 240.0


def test_energy_integrates_device_time():
    import _simclock

    m, p = meter(power=1800.0, energy=0)
    _simclock.advance(3600 * 1000)
    p.request_readings()
    assert p.poll() and p.energy == 1800, p.energy
