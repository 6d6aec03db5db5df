# HDC1080 and BME280 drivers on the simulated I2C bus against their register-level models.
import _simclock
from machine import I2C
from fwunit import raises as expect_raises
from sim.models import attach
from hdc1080 import HDC1080, CONVERSION_MS
from bme280 import BME280, MEASUREMENT_MS
import sim.models.bme280 as bme_model


def bus():
    return I2C(0, scl=22, sda=21)


def bme(**values):
    return attach("i2c0", "BME280", addr=0x76, args=values)


def measure(sensor, ms):
    sensor.trigger()
    _simclock.advance(ms)
    return sensor.read()


def absent_then_failing(model, chip, ms):
    """A chip that does not answer is not found; once there, a read it refuses raises.
    The driver of the chip, made then."""
    model.absent()
    expect_raises(OSError, chip, bus())
    model.absent(False)
    s = chip(bus())
    model.fail(1)
    s.trigger()
    _simclock.advance(ms)
    expect_raises(OSError, s.read)
    return s


def test_bme280_calibration_registers():
    bme()
    cal = BME280(bus()).calibration
    ex = bme_model.EXAMPLE
    assert (cal.T1, cal.T2, cal.T3) == ex["T"]
    assert tuple(cal.P) == ex["P"]
    assert (cal.H1, cal.H2, cal.H3, cal.H4, cal.H5, cal.H6) == ex["H"]


def test_bme280_negative_humidity_trims():
    m = bme()
    m.set_calibration(T=(27504, 26435, -1000), P=bme_model.EXAMPLE["P"],
                      H=(75, -362, 0, -313, -50, -30))
    cal = BME280(bus()).calibration
    assert (cal.H2, cal.H4, cal.H5, cal.H6) == (-362, -313, -50, -30)


def test_bme280_datasheet_example():
    # BMP280 datasheet 3.12: adc_T 519888 -> 25.08 C (t_fine 128422); adc_P 415148 ->
    # 100653.27 Pa with the same trimming values.
    m = bme()
    m.set_raw(519888, 415148, 0x8000)
    s = BME280(bus())
    assert s.calibration.t_fine(519888) == 128422
    t, p, h = measure(s, MEASUREMENT_MS)
    assert t == 25.08, t
    assert abs(p * 100 - 100653.27) < 0.05, p


def test_bme280_matches_float_compensation():
    m = bme()
    s = BME280(bus())
    for t, p, h in ((22.5, 1000.0, 45.0), (-10.0, 950.3, 90.0), (35.2, 1030.0, 12.5)):
        m.set(t, p, h)
        got = measure(s, MEASUREMENT_MS)
        assert abs(got[0] - t) < 0.02 and abs(got[1] - p) < 0.02 and abs(got[2] - h) < 0.05, \
            (t, p, h, got)


def test_bme280_read_too_early():
    m = bme(temperature=21.0)
    s = BME280(bus())
    s.trigger()
    e = expect_raises(OSError, s.read)
    assert s.temperature is None
    _simclock.advance(MEASUREMENT_MS)
    assert abs(s.read()[0] - 21.0) < 0.02


def test_bme280_absent_and_failing():
    s = absent_then_failing(bme(), BME280, MEASUREMENT_MS)
    assert s.pressure is None
    measure(s, MEASUREMENT_MS)
    assert s.pressure is not None


def test_bme280_wrong_chip():
    m = bme()
    m.regs[0xD0] = 0x58  # a BMP280
    assert "not a BME280" in str(expect_raises(OSError, BME280, bus()))


def hdc(**values):
    return attach("i2c0", "HDC1080", addr=0x40, args=values)


def test_hdc1080_reads():
    m = hdc(temperature=23.4, humidity=56.7)
    s = HDC1080(bus())
    assert m.config == 0x1000
    t, h = measure(s, CONVERSION_MS)
    assert abs(t - 23.4) < 0.01 and abs(h - 56.7) < 0.01, (t, h)
    m.set(temperature=-5.5, humidity=99.0)
    t, h = measure(s, CONVERSION_MS)
    assert abs(t + 5.5) < 0.01 and abs(h - 99.0) < 0.01, (t, h)


def test_hdc1080_too_early_not_acknowledged():
    hdc()
    s = HDC1080(bus())
    s.trigger()
    expect_raises(OSError, s.read)
    assert s.temperature is None
    _simclock.advance(CONVERSION_MS)
    assert s.read()


def test_hdc1080_absent_or_failing():
    s = absent_then_failing(hdc(), HDC1080, CONVERSION_MS)
    assert s.humidity is None


# --- the station: malfunction bitmap and stale values ----------------------------------

from weather.station import Station, HDC_ABSENT, BME_ABSENT, HUMIDITY_FAILED, \
    TEMPERATURE_FAILED, PRESSURE_FAILED, CONVERSION_MS as STATION_MS


def station_cycle(st):
    st.trigger()
    _simclock.advance(STATION_MS)
    return st.collect()


def both(t=20.0, h=50.0, p=1013.2):
    return hdc(temperature=t, humidity=h), bme(pressure=p, temperature=t)


def test_station_reads():
    hm, bm = both(21.5, 40.0, 1002.3)
    st = Station(bus())
    assert station_cycle(st) == 0
    assert abs(st.temperature - 21.5) < 0.01 and abs(st.humidity - 40.0) < 0.01
    assert abs(st.pressure - 1002.3) < 0.02


def test_station_absent_then_found():
    hm, bm = both()
    hm.absent()
    bm.absent()
    st = Station(bus())
    assert station_cycle(st) == HDC_ABSENT | BME_ABSENT
    assert (st.temperature, st.humidity, st.pressure) == (None, None, None)
    bm.absent(False)
    assert station_cycle(st) == HDC_ABSENT
    assert st.pressure is not None and st.temperature is None
    hm.absent(False)
    assert station_cycle(st) == 0 and st.temperature is not None


def test_station_read_errors_withdraw_values():
    hm, bm = both()
    st = Station(bus())
    assert station_cycle(st) == 0
    hm.fail(1)
    assert station_cycle(st) == HUMIDITY_FAILED | TEMPERATURE_FAILED
    assert st.temperature is None and st.humidity is None and st.pressure is not None
    bm.fail(1)
    assert station_cycle(st) == PRESSURE_FAILED
    assert st.pressure is None and st.temperature is not None
    assert station_cycle(st) == 0


def test_station_chip_vanishes():
    hm, bm = both()
    st = Station(bus())
    station_cycle(st)
    hm.absent()
    assert station_cycle(st) == HUMIDITY_FAILED | TEMPERATURE_FAILED
    hm.absent(False)
    assert station_cycle(st) == 0
