# TI HDC1080 temperature and humidity sensor on I2C. Never blocks: trigger() starts a
# conversion of both values, read() fetches them CONVERSION_MS later (too early: the chip
# does not acknowledge, OSError).
from micropython import const

ADDRESS = const(0x40)
CONVERSION_MS = const(20)  # 14-bit temperature then humidity: 6.35 + 6.5 ms, with margin

_TEMPERATURE = const(0x00)
_CONFIG = const(0x02)
_MANUFACTURER = const(0xFE)
_CONFIG_BOTH_14BIT = const(0x1000)  # acquire temperature and humidity in one go


class HDC1080:
    def __init__(self, i2c, addr=ADDRESS):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(4)
        ids = i2c.readfrom_mem(addr, _MANUFACTURER, 4)
        if ids != b"\x54\x49\x10\x50":
            raise OSError("0x%02x: not an HDC1080 (ids %s)" % (addr, ids.hex()))
        i2c.writeto_mem(addr, _CONFIG, bytes((_CONFIG_BOTH_14BIT >> 8, 0)))
        self.temperature = None  # C
        self.humidity = None  # %RH

    def trigger(self):
        self._i2c.writeto(self._addr, bytes((_TEMPERATURE,)))

    def read(self):
        """Fetch the conversion started by trigger(); (temperature C, humidity %RH)."""
        buf = self._buf
        self.temperature = self.humidity = None
        self._i2c.readfrom_into(self._addr, buf)
        self.temperature = (buf[0] << 8 | buf[1]) * 165 / 65536 - 40
        self.humidity = (buf[2] << 8 | buf[3]) * 100 / 65536
        return self.temperature, self.humidity
