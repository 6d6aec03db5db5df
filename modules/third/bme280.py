# Bosch BME280 temperature, pressure and humidity sensor on I2C, in forced mode.
# Never blocks: trigger() starts one measurement, read() fetches it MEASUREMENT_MS later.
# Compensation: the datasheet's integer formulas (BME280 datasheet 4.2.3), exact in
# MicroPython's integers; C's truncating division is kept where the datasheet divides.
from micropython import const

ADDRESS = const(0x76)
MEASUREMENT_MS = const(20)  # x1 oversampling of the three: 9.3 ms at most

_CHIP_ID = const(0xD0)
_BME280 = const(0x60)
_CALIB_TP = const(0x88)
_CALIB_H = const(0xE1)
_CTRL_HUM = const(0xF2)
_STATUS = const(0xF3)
_CTRL_MEAS = const(0xF4)
_CONFIG = const(0xF5)
_DATA = const(0xF7)
_MEASURING = const(0x08)
_FORCED_X1 = const(0b001_001_01)  # temperature x1, pressure x1, forced mode
_SKIPPED = const(0x80000)


def _u16(b, i):
    return b[i] | b[i + 1] << 8


def _s16(b, i):
    v = b[i] | b[i + 1] << 8
    return v - 65536 if v & 0x8000 else v


def _s8(v):
    return v - 256 if v & 0x80 else v


def _div(a, b):
    # C integer division (towards zero).
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


class Calibration:
    """The trimming parameters dig_T1..dig_H6 from registers 0x88..0xA1 and 0xE1..0xE7."""

    def __init__(self, tp, h):
        self.T1 = _u16(tp, 0)
        self.T2 = _s16(tp, 2)
        self.T3 = _s16(tp, 4)
        self.P = [_u16(tp, 6)] + [_s16(tp, 8 + 2 * i) for i in range(8)]  # dig_P1..P9
        self.H1 = tp[25]
        self.H2 = _s16(h, 0)
        self.H3 = h[2]
        self.H4 = _s8(h[3]) << 4 | h[4] & 0x0F
        self.H5 = _s8(h[5]) << 4 | h[4] >> 4
        self.H6 = _s8(h[6])

    def t_fine(self, adc_t):
        t1 = self.T1
        var1 = (((adc_t >> 3) - (t1 << 1)) * self.T2) >> 11
        d = (adc_t >> 4) - t1
        var2 = (((d * d) >> 12) * self.T3) >> 14
        return var1 + var2

    @staticmethod
    def temperature(t_fine):
        """In 0.01 C."""
        return (t_fine * 5 + 128) >> 8

    def pressure(self, adc_p, t_fine):
        """In Pa as Q24.8 (BME280_compensate_P_int64)."""
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.P
        var1 = t_fine - 128000
        var2 = var1 * var1 * p6
        var2 += (var1 * p5) << 17
        var2 += p4 << 35
        var1 = ((var1 * var1 * p3) >> 8) + ((var1 * p2) << 12)
        var1 = (((1 << 47) + var1) * p1) >> 33
        if var1 == 0:
            return 0
        p = 1048576 - adc_p
        p = _div(((p << 31) - var2) * 3125, var1)
        var1 = (p9 * (p >> 13) * (p >> 13)) >> 25
        var2 = (p8 * p) >> 19
        return ((p + var1 + var2) >> 8) + (p7 << 4)

    def humidity(self, adc_h, t_fine):
        """In %RH as Q22.10 (bme280_compensate_H_int32)."""
        v = t_fine - 76800
        v = ((((adc_h << 14) - (self.H4 << 20) - self.H5 * v) + 16384) >> 15) * \
            (((((((v * self.H6) >> 10) * (((v * self.H3) >> 11) + 32768)) >> 10) + 2097152)
              * self.H2 + 8192) >> 14)
        v -= ((((v >> 15) * (v >> 15)) >> 7) * self.H1) >> 4
        v = 0 if v < 0 else min(v, 419430400)
        return v >> 12


class BME280:
    def __init__(self, i2c, addr=ADDRESS):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(8)
        chip = i2c.readfrom_mem(addr, _CHIP_ID, 1)[0]
        if chip != _BME280:
            raise OSError("0x%02x: not a BME280 (chip id 0x%02x)" % (addr, chip))
        self.calibration = Calibration(i2c.readfrom_mem(addr, _CALIB_TP, 26),
                                       i2c.readfrom_mem(addr, _CALIB_H, 7))
        i2c.writeto_mem(addr, _CONFIG, b"\x00")
        i2c.writeto_mem(addr, _CTRL_HUM, b"\x01")  # humidity x1 (applies at the next ctrl_meas)
        self.temperature = self.pressure = self.humidity = None

    def trigger(self):
        self._i2c.writeto_mem(self._addr, _CTRL_MEAS, bytes((_FORCED_X1,)))

    def read(self):
        """Fetch the measurement started by trigger(): (C, hPa, %RH)."""
        self.temperature = self.pressure = self.humidity = None
        i2c, addr, buf = self._i2c, self._addr, self._buf
        if i2c.readfrom_mem(addr, _STATUS, 1)[0] & _MEASURING:
            raise OSError("BME280: measurement not done")
        i2c.readfrom_mem_into(addr, _DATA, buf)
        adc_p = buf[0] << 12 | buf[1] << 4 | buf[2] >> 4
        adc_t = buf[3] << 12 | buf[4] << 4 | buf[5] >> 4
        adc_h = buf[6] << 8 | buf[7]
        if adc_t == _SKIPPED or adc_p == _SKIPPED:
            raise OSError("BME280: no measurement")
        return self.compensate(adc_t, adc_p, adc_h)

    def compensate(self, adc_t, adc_p, adc_h):
        cal = self.calibration
        t_fine = cal.t_fine(adc_t)
        self.temperature = cal.temperature(t_fine) / 100
        self.pressure = cal.pressure(adc_p, t_fine) / 25600
        self.humidity = cal.humidity(adc_h, t_fine) / 1024
        return self.temperature, self.pressure, self.humidity
