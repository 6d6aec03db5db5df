# Level logic: debounce, highest wet switch, malfunction bits, MCP23017 failure and retry,
# and the estimate capped at the next switch.
import _simclock
from machine import I2C, Pin
from sim import models

from mcp23017 import MCP23017
from h2o.level import Debounce, Tank, highest_wet, INCONSISTENT, INIT_FAILED, READ_FAILED
from fwunit import eq

SENSORS = [20, 40, 60, 80, 100]


def test_debounce_needs_four_equal_samples():
    d = Debounce(4)
    eq([d.sample(v) for v in (1, 1, 1, 1, 1)], [False, False, False, True, False])
    eq(d.value, 1)
    eq([d.sample(v) for v in (2, 2, 2, 1, 2, 2, 2)], [False] * 7, "a flicker restarts the count")
    eq(d.value, 1)
    eq(d.sample(2), True)


def test_highest_wet():
    eq(highest_wet(0b11111, 5), (-1, False))
    eq(highest_wet(0b11100, 5), (1, False))
    eq(highest_wet(0b00000, 5), (4, False))
    eq(highest_wet(0b11010, 5), (2, True))
    eq(highest_wet(0xFFE0, 5), (4, False), "unused inputs are ignored")


def wet(n):
    """Input bits with the lowest n switches wet."""
    return 0xFFFF & ~((1 << n) - 1)


def tank(**args):
    m = models.attach("i2c0", "MCP23017", 0x20, args=args)
    changes = []
    t = Tank(MCP23017(I2C(0, scl=Pin(22), sda=Pin(21))), SENSORS, 1000.0,
             lambda old, new: changes.append(new))
    return m, t, changes


def samples(t, n):
    for _ in range(n):
        t.sample()
        _simclock.advance(1000)


def test_fill_and_drain():
    m, t, changes = tank()
    m.open_switches(wet(0))
    samples(t, 3)
    eq(t.level_pct, None, "unknown before 4 samples")
    samples(t, 1)
    eq(t.level_pct, 0)
    for n in range(1, 6):
        m.open_switches(wet(n))
        samples(t, 4)
        eq(t.level_pct, SENSORS[n - 1])
        eq(t.level_vol, SENSORS[n - 1] * 10.0)
    for n in (3, 0):
        m.open_switches(wet(n))
        samples(t, 4)
    eq(changes, [0, 20, 40, 60, 80, 100, 60, 0])
    eq(t.malfunction, 0)


def test_flicker_is_ignored():
    m, t, changes = tank()
    m.open_switches(wet(2))
    samples(t, 4)
    for _ in range(3):
        m.open_switches(wet(3))
        samples(t, 2)
        m.open_switches(wet(2))
        samples(t, 1)
    eq(changes, [40])


def test_wet_above_dry_is_inconsistent():
    m, t, _ = tank()
    m.open_switches(0xFFFF & ~0b10011)  # 0, 1 and 4 wet; 2 and 3 dry
    samples(t, 4)
    eq(t.malfunction, INCONSISTENT)
    eq(t.level_pct, 100, "highest wet switch")
    m.open_switches(wet(2))
    samples(t, 4)
    eq(t.malfunction, 0)
    eq(t.level_pct, 40)


def test_absent_at_boot_reads_full_and_is_retried():
    m, t, _ = tank(absent=True)
    eq(t.malfunction, INIT_FAILED)
    eq(t.level_pct, 100)
    m.absent(False)
    m.open_switches(wet(1))
    samples(t, 5)
    eq(t.malfunction, INIT_FAILED, "not retried within 10 s")
    samples(t, 10)
    eq(t.malfunction, 0)
    eq(t.level_pct, 20)


def test_read_failure_reads_full_then_recovers():
    m, t, changes = tank()
    m.open_switches(wet(2))
    samples(t, 4)
    m.fail()
    samples(t, 1)
    eq(t.malfunction, READ_FAILED)
    eq(t.level_pct, 100)
    m.fail(False)
    samples(t, 30)
    eq(t.malfunction, 0)
    eq(t.level_pct, 40)
    eq(changes, [40, 100, 40])


def test_retry_backs_off_to_ten_minutes():
    m, t, _ = tank(absent=True)
    samples(t, 3600)
    eq(t._retry_ms, 600000)
    m.absent(False)
    samples(t, 600)
    eq(t.malfunction, 0)


def test_estimate_is_capped_at_next_switch():
    m, t, _ = tank()
    eq(t.estimate(5.0), (None, None))
    m.open_switches(wet(3))
    samples(t, 4)
    eq(t.estimate(12.0), (612.0, 12.0))
    eq(t.estimate(500.0), (800.0, 200.0), "capped at the 80% switch")
    m.open_switches(wet(5))
    samples(t, 4)
    eq(t.estimate(50.0), (1000.0, 0.0), "full")
    m.open_switches(wet(0))
    samples(t, 4)
    eq(t.estimate(300.0), (200.0, 200.0), "below the first switch")
