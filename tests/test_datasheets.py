"""Drivers against their datasheets, not against the simulator's models: raw register and
frame bytes go straight into the driver in the host firmware, and the expected values are
computed here, in CPython, from the datasheet's own formulas and tables.

- HDC1080 (TI SNAS672A, 8.6.1/8.6.2): T = raw/2^16 * 165 - 40 degC, RH = raw/2^16 * 100 %;
  manufacturer ID 0x5449, device ID 0x1050 (Table 1).
- PZEM-004T v3.0 user manual (2.3, input registers 0x0000-0x0009): voltage 0.1 V, current
  0.001 A and power 0.1 W as 32 bits low word first, energy 1 Wh (32 bits, low word
  first), frequency 0.1 Hz, power factor 0.01, alarm 0xFFFF/0x0000; Modbus-RTU framing
  with the CRC computed by crcmod's predefined 'modbus' function."""

import json
import struct
from pathlib import Path

import crcmod.predefined
import pytest

from appliance_units import appliances_firmware  # noqa: F401 (fixture)
from fwcode import last_json, run_code

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "import sys;sys.path[:]=['.frozen'];import json\n"
modbus_crc = crcmod.predefined.mkCrcFun("modbus")


def f32(x):
    """x as the ESP32's single-precision float holds it."""
    return struct.unpack("f", struct.pack("f", x))[0]


HDC = ENTRY + """
{driver}
class Regs:  # the chip's registers as the datasheet lays them out, nothing else
    def __init__(self, data): self.data = data
    def readfrom_mem(self, addr, reg, n): return bytes.fromhex('54491050')
    def writeto_mem(self, addr, reg, buf): pass
    def writeto(self, addr, buf): pass
    def readfrom_into(self, addr, buf): buf[:] = self.data
out = []
for t, h in {pairs}:
    s = HDC1080(Regs(bytes((t >> 8, t & 255, h >> 8, h & 255)){extra}))
    out.append(s.read())
print(json.dumps(out))
"""

HDC_RAW = [(0x0000, 0x0000), (0x6000, 0x8000), (0x61F8, 0x17BC), (0xFFFC, 0xFFFC), (0x3E54, 0xA3D4)]


def hdc_expected(t, h):
    return t / 2 ** 16 * 165 - 40, h / 2 ** 16 * 100


FROZEN_DRIVER = "from hdc1080 import HDC1080"


def hdc_readings(exe, tmp_path, extra="", driver=FROZEN_DRIVER):
    return last_json(run_code(exe, HDC.format(pairs=HDC_RAW, extra=extra, driver=driver), tmp_path))


def close(got, want):
    # The firmware computes in single precision: one float32 step of the result. As many
    # values as expected: an empty or short result is not close.
    return len(got) == len(want) and \
        all(abs(g - w) <= 2 * abs(f32(w) - w) + 1e-5 * max(1, abs(w)) for g, w in zip(got, want))


def test_hdc1080_conversions_follow_the_datasheet(appliances_firmware, tmp_path):
    got = hdc_readings(appliances_firmware, tmp_path)
    want = [hdc_expected(t, h) for t, h in HDC_RAW]
    assert want[0] == (-40, 0) and want[1] == (21.875, 50.0)  # the formula at its landmarks
    assert len(got) == len(want), got
    for g, w in zip(got, want):
        assert close(g, w), (g, w)


def test_a_driver_off_the_datasheet_is_caught(appliances_firmware, tmp_path):
    # The frozen driver's own source with temperature and humidity words swapped, run in the
    # same firmware against the same datasheet values: the comparison fails.
    source = (ROOT / "modules" / "third" / "hdc1080.py").read_text()
    t_word, h_word = "(buf[0] << 8 | buf[1])", "(buf[2] << 8 | buf[3])"
    swapped = source.replace(t_word, "@T").replace(h_word, t_word).replace("@T", h_word)
    assert swapped != source and source.count(t_word) == source.count(h_word) == 1
    got = hdc_readings(appliances_firmware, tmp_path, driver=f"exec({swapped!r})")
    want = [hdc_expected(t, h) for t, h in HDC_RAW]
    assert len(got) == len(want)
    assert not all(close(g, w) for g, w in zip(got, want))
    assert not close([], want)  # nothing read is not a match either


PZEM = ENTRY + """
from pzem import PZEM
class Wire:  # the meter answers once the request is written
    def __init__(self, reply): self.reply = reply; self.rx = bytearray(); self.sent = []
    def write(self, buf): self.sent.append(bytes(buf)); self.rx[:] = self.reply
    def any(self): return len(self.rx)
    def readinto(self, buf):
        n = min(len(buf), len(self.rx)); buf[:n] = self.rx[:n]; self.rx[0:n] = b''; return n or None
out = []
for frame in {frames}:
    w = Wire(bytes.fromhex(frame))
    p = PZEM(w, addr=1)
    p.request_readings()
    try:
        ok = p.poll()
        out.append([w.sent[0].hex(), ok, p.voltage, p.current, p.power, p.energy, p.frequency, p.pf, p.alarm])
    except Exception as e:
        out.append([w.sent[0].hex(), type(e).__name__, str(e)])
print(json.dumps(out))
"""


def pzem_reply(volts, amps, watts, wh, hz, pf, alarm, addr=1):
    """A read-input-registers reply laid out as the manual's register table says."""
    regs = [round(volts * 10)]
    for value in (round(amps * 1000), round(watts * 10), wh):
        regs += [value & 0xFFFF, value >> 16]  # low 16 bits first
    regs += [round(hz * 10), round(pf * 100), 0xFFFF if alarm else 0]
    # the manual's order: V, I (2), P (2), E (2), f, pf, alarm
    body = bytes([addr, 0x04, 20]) + struct.pack(">10H", *regs)
    return body + struct.pack("<H", modbus_crc(body))


READINGS = [(230.0, 1.0, 230.0, 0, 50.0, 1.0, False),
            (231.4, 12.345, 2701.9, 123456, 49.9, 0.87, False),
            (80.0, 99.999, 22000.0, 9999999, 65.0, 0.0, True)]


def test_pzem_request_and_readings_follow_the_manual(appliances_firmware, tmp_path):
    frames = [pzem_reply(*r).hex() for r in READINGS]
    out = last_json(run_code(appliances_firmware, PZEM.format(frames=frames), tmp_path))
    request = bytes([1, 0x04, 0, 0, 0, 10])  # read 10 input registers from 0x0000
    request += struct.pack("<H", modbus_crc(request))
    assert len(out) == len(READINGS), out
    for (sent, ok, *values), r in zip(out, READINGS):
        assert sent == request.hex() and ok is True
        want = list(r[:6]) + [0xFFFF if r[6] else 0]
        assert close(values, want), (values, want)


def test_a_frame_off_the_manual_is_refused(appliances_firmware, tmp_path):
    good = pzem_reply(*READINGS[1])
    flipped = good[:5] + bytes([good[5] ^ 1]) + good[6:]
    out = last_json(run_code(appliances_firmware, PZEM.format(frames=[flipped.hex()]), tmp_path))
    assert out[0][1:] == ["PZEMError", "bad CRC"]
