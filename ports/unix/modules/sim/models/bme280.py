# Bosch BME280 at register level: chip id, calibration (trimming) registers, forced-mode
# measurements that take device time, and raw ADC values computed from the physical values
# the host sets, by inverting the datasheet's floating-point compensation (4.2.3) -- an
# implementation independent of the driver's integer one.
import time
from errno import ENODEV
from sim.models import I2CModel

# The BMP280 datasheet's worked example (3.12) for T and P; H from a production part.
EXAMPLE = {"T": (27504, 26435, -1000),
           "P": (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000),
           "H": (75, 362, 0, 313, 50, 30)}


def _le16(v):
    v &= 0xFFFF
    return [v & 0xFF, v >> 8]


class BME280(I2CModel):
    def __init__(self, temperature=20.0, pressure=1013.25, humidity=50.0, calibration=None,
                 absent=False, **args):
        super().__init__(**args)
        self.present = not absent
        self.regs = bytearray(256)
        self.regs[0xD0] = 0x60
        self.pointer = 0
        self.fail_reads = 0
        self.measurements = 0
        self._done_at = None
        self.raw = None  # (adc_T, adc_P, adc_H) set by the host, else from the values
        self.set_calibration(**(calibration or EXAMPLE))
        self.set(temperature, pressure, humidity)
        self._latch(0x80000, 0x80000, 0x8000)  # the reset values: nothing measured yet

    # --- host side --------------------------------------------------------------------

    def set(self, temperature=None, pressure=None, humidity=None):
        """Physical values: C, hPa, %RH."""
        if temperature is not None:
            self.temperature = temperature
        if pressure is not None:
            self.pressure = pressure
        if humidity is not None:
            self.humidity = humidity
        self.raw = None

    def set_raw(self, adc_t, adc_p, adc_h):
        self.raw = (adc_t, adc_p, adc_h)

    def set_calibration(self, T, P, H):
        r = self.regs
        tp = []
        for v in list(T) + list(P):
            tp += _le16(v)
        r[0x88:0x88 + 24] = bytes(tp)
        h1, h2, h3, h4, h5, h6 = H
        r[0xA1] = h1
        r[0xE1:0xE3] = bytes(_le16(h2))
        r[0xE3] = h3
        r[0xE4] = (h4 >> 4) & 0xFF
        r[0xE5] = (h4 & 0x0F) | (h5 & 0x0F) << 4
        r[0xE6] = (h5 >> 4) & 0xFF
        r[0xE7] = h6 & 0xFF
        self.cal = (T, P, H)

    def fail(self, n=1):
        self.fail_reads = n

    # --- the datasheet's floating-point compensation ------------------------------------

    def t_fine(self, adc_t):
        t1, t2, t3 = self.cal[0]
        v1 = (adc_t / 16384 - t1 / 1024) * t2
        d = adc_t / 131072 - t1 / 8192
        return v1 + d * d * t3

    def compensate_p(self, adc_p, t_fine):
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.cal[1]
        v1 = t_fine / 2 - 64000
        v2 = v1 * v1 * p6 / 32768
        v2 = v2 + v1 * p5 * 2
        v2 = v2 / 4 + p4 * 65536
        v1 = (p3 * v1 * v1 / 524288 + p2 * v1) / 524288
        v1 = (1 + v1 / 32768) * p1
        p = 1048576 - adc_p
        p = (p - v2 / 4096) * 6250 / v1
        v1 = p9 * p * p / 2147483648
        v2 = p * p8 / 32768
        return p + (v1 + v2 + p7) / 16

    def compensate_h(self, adc_h, t_fine):
        h1, h2, h3, h4, h5, h6 = self.cal[2]
        v = t_fine - 76800
        v = (adc_h - (h4 * 64 + h5 / 16384 * v)) * \
            (h2 / 65536 * (1 + h6 / 67108864 * v * (1 + h3 / 67108864 * v)))
        return v * (1 - h1 * v / 524288)

    @staticmethod
    def _solve(f, target, lo, hi, rising):
        # The ADC code whose compensated value is nearest the target (f is monotonic).
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (f(mid) < target) == rising:
                lo = mid
            else:
                hi = mid
        return lo if abs(f(lo) - target) <= abs(f(hi) - target) else hi

    def adc(self):
        if self.raw:
            return self.raw
        adc_t = self._solve(lambda a: self.t_fine(a) / 5120, self.temperature, 0, 0xFFFFF, True)
        tf = self.t_fine(adc_t)
        adc_p = self._solve(lambda a: self.compensate_p(a, tf), self.pressure * 100, 0,
                            0xFFFFF, False)
        adc_h = self._solve(lambda a: self.compensate_h(a, tf), self.humidity, 0, 0xFFFF, True)
        return adc_t, adc_p, adc_h

    # --- the wire ---------------------------------------------------------------------

    def _latch(self, adc_t, adc_p, adc_h):
        r = self.regs
        r[0xF7:0xFF] = bytes((adc_p >> 12, adc_p >> 4 & 0xFF, (adc_p & 0xF) << 4,
                              adc_t >> 12, adc_t >> 4 & 0xFF, (adc_t & 0xF) << 4,
                              adc_h >> 8, adc_h & 0xFF))

    def _update(self):
        if self._done_at is not None and time.ticks_diff(time.ticks_ms(), self._done_at) >= 0:
            self._done_at = None
            self._latch(*self.adc())
            self.regs[0xF4] &= 0xFC  # back to sleep mode
        self.regs[0xF3] = 0x08 if self._done_at is not None else 0

    def write(self, buf):
        if not buf:
            return
        self.pointer = buf[0]
        for b in buf[1:]:
            reg = self.pointer
            if reg in (0xF2, 0xF4, 0xF5):
                self.regs[reg] = b
                if reg == 0xF4 and b & 0x03 in (1, 2):
                    self.measurements += 1
                    self._done_at = time.ticks_add(time.ticks_ms(), 10)
            self.pointer += 1

    def read(self, n):
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError(ENODEV)
        self._update()
        out = self.regs[self.pointer:self.pointer + n]
        self.pointer += n
        return bytes(out)
