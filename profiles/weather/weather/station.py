# The weather station's sensors: HDC1080 (temperature, humidity) and BME280 (pressure).
# A measurement is two steps, trigger() then collect() CONVERSION_MS later; a value whose
# read failed is None until a read succeeds again (never republished as if fresh).
from micropython import const
from hdc1080 import HDC1080
from bme280 import BME280

HDC_ABSENT = const(1)
BME_ABSENT = const(2)
HUMIDITY_FAILED = const(4)
TEMPERATURE_FAILED = const(8)
PRESSURE_FAILED = const(16)

CONVERSION_MS = const(20)


class Station:
    def __init__(self, i2c):
        self._i2c = i2c
        self._hdc = self._bme = None
        self.malfunction = HDC_ABSENT | BME_ABSENT
        self.temperature = self.humidity = self.pressure = None
        self.error = None
        self.probe()

    def probe(self):
        """Look for the chips that are missing (at boot, then before each measurement)."""
        if self._hdc is None:
            try:
                self._hdc = HDC1080(self._i2c)
                self.malfunction &= ~HDC_ABSENT
            except OSError as e:
                self.error = "HDC1080: %s" % e
        if self._bme is None:
            try:
                self._bme = BME280(self._i2c)
                self.malfunction &= ~BME_ABSENT
            except OSError as e:
                self.error = "BME280: %s" % e

    def trigger(self):
        self.error = None  # what went wrong in this measurement, if anything
        if self.malfunction & (HDC_ABSENT | BME_ABSENT):
            self.probe()
        for chip in (self._hdc, self._bme):
            if chip is not None:
                try:
                    chip.trigger()
                except OSError:
                    pass  # the read will fail and say so

    def collect(self):
        m = self.malfunction & (HDC_ABSENT | BME_ABSENT)
        t = h = p = None
        if self._hdc is not None:
            try:
                t, h = self._hdc.read()
            except OSError as e:
                m |= HUMIDITY_FAILED | TEMPERATURE_FAILED
                self.error = "HDC1080: %s" % e
        if self._bme is not None:
            try:
                p = self._bme.read()[1]
            except OSError as e:
                m |= PRESSURE_FAILED
                self.error = "BME280: %s" % e
        if h is not None and not 0 <= h <= 100:
            h = None
            m |= HUMIDITY_FAILED
        if p is not None and not 300 <= p <= 1100:
            p = None
            m |= PRESSURE_FAILED
        self.temperature, self.humidity, self.pressure = t, h, p
        self.malfunction = m
        return m
