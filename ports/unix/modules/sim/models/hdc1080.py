# TI HDC1080 at register level: pointer register, configuration, IDs, and conversions that
# take device time (reading before a conversion is done is not acknowledged).
import time
from errno import ENODEV
from sim.models import I2CModel


class HDC1080(I2CModel):
    def __init__(self, temperature=20.0, humidity=50.0, absent=False, **args):
        super().__init__(**args)
        self.present = not absent
        self.temperature = temperature
        self.humidity = humidity
        self.config = 0x1000
        self.pointer = 0
        self.fail_reads = 0  # the next n reads are not acknowledged
        self.conversions = 0
        self._ready_at = None  # ticks_ms when the triggered conversion is done
        self._result = None

    # --- host side --------------------------------------------------------------------

    def set(self, temperature=None, humidity=None):
        if temperature is not None:
            self.temperature = temperature
        if humidity is not None:
            self.humidity = humidity

    def fail(self, n=1):
        self.fail_reads = n

    # --- the wire ---------------------------------------------------------------------

    def _raw(self):
        t = int((self.temperature + 40) * 65536 / 165) & 0xFFFC
        h = int(self.humidity * 65536 / 100)
        return min(t, 0xFFFC), min(h, 0xFFFC)

    def write(self, buf):
        if not buf:
            return
        self.pointer = buf[0]
        if len(buf) >= 3 and self.pointer == 0x02:
            self.config = buf[1] << 8 | buf[2]
        elif len(buf) == 1 and self.pointer in (0x00, 0x01):
            self.conversions += 1
            self._ready_at = time.ticks_add(time.ticks_ms(), 14)
            self._result = self._raw()

    def read(self, n):
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError(ENODEV)
        p = self.pointer
        if p in (0x00, 0x01):
            if self._ready_at is None or time.ticks_diff(time.ticks_ms(), self._ready_at) < 0:
                raise OSError(ENODEV)  # conversion in progress: no acknowledge
            t, h = self._result
            words = (t, h) if p == 0 and self.config & 0x1000 else ((t,) if p == 0 else (h,))
        elif p == 0x02:
            words = (self.config,)
        elif p == 0xFE:
            words = (0x5449, 0x1050)
        elif p == 0xFF:
            words = (0x1050,)
        else:
            words = (0,)
        out = bytearray()
        for w in words:
            out.append(w >> 8)
            out.append(w & 0xFF)
        while len(out) < n:
            out.append(0xFF)
        return bytes(out[:n])
