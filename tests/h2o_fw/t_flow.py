# Flow logic: rate over the window, volumes, over-range; fed by a counter stand-in.
import _simclock
from array import array

from h2o.flow import Flow, OVER_RANGE
from fwunit import eq, near

RATE = 4.8  # pulses per second at 1 L/min
MAX = 60.0


class Counts:
    """Stands in for epx.pulse.PulseCounter: take() returns what the test queued."""

    def __init__(self):
        self.counted = 0

    def take(self):
        c = self.counted
        self.counted = 0
        return c


def run(flow, counts, hz, seconds):
    for _ in range(seconds):
        counts.counted += hz
        _simclock.advance(1000)
        flow.tick()


def test_rate_and_volumes():
    c = Counts()
    f = Flow(c, RATE, MAX)
    run(f, c, 48, 4)
    eq(f.rate, None, "under 5 s of data")
    run(f, c, 48, 6)
    near(f.rate, 10.0, 0.001, "48 Hz = 10 L/min")
    near(f.total, 100 / 60, 0.001)
    run(f, c, 24, 10)
    near(f.rate, 5.0, 0.001)
    near(f.since_level, 150 / 60, 0.001)
    f.level_changed()
    eq(f.since_level, 0.0)
    run(f, c, 0, 10)
    eq(f.rate, 0.0)


def test_over_range_is_a_malfunction_not_water():
    c = Counts()
    f = Flow(c, RATE, MAX)
    run(f, c, 24, 10)
    total = f.total
    run(f, c, 400, 10)  # 83 L/min: the window crosses maxflow on the 8th second
    eq(f.malfunction, OVER_RANGE)
    eq(f.rate, None)
    near(f.total, total, 1e-6, "the fast seconds are taken back")
    run(f, c, 24, 2)
    eq(f.malfunction, OVER_RANGE, "while the window is above maxflow")
    run(f, c, 24, 8)
    eq(f.malfunction, 0)
    near(f.rate, 5.0, 0.001)
    near(f.total, total + 8 * 24 / 288, 1e-6, "counted again once the window is in range")


def test_a_short_burst_is_averaged():
    c = Counts()
    f = Flow(c, RATE, MAX)
    run(f, c, 24, 10)
    run(f, c, 400, 2)
    eq(f.malfunction, 0)
    near(f.total, (240 + 800) / 288, 1e-6)


def test_rated_flow_with_pulses_moved_between_ticks_is_water():
    # 288 Hz is maxflow: handlers late by up to the 8-deep queue move pulses into the next
    # tick (288 + 8, then 280). Still water, every pulse counted.
    c = Counts()
    f = Flow(c, RATE, MAX)
    for n in (288, 296, 280) * 5:
        c.counted += n
        _simclock.advance(1000)
        f.tick()
        eq(f.malfunction, 0)
    eq(f.pulses, 288 * 15)
    # 10 pulses beyond in one second is more than the queue explains: a fault.
    run(f, c, 288 + 10, 10)
    eq(f.malfunction, OVER_RANGE)


def test_a_billion_pulses_stay_exact():
    # Years of flow: the state of a meter that counted 10**9 - 100 pulses, then 100 more.
    c = Counts()
    f = Flow(c, RATE, MAX)
    f.pulses = f.level_pulses = 10**9 - 100
    f._unsent = 10000 * (10**9 - 100)
    run(f, c, 10, 10)
    eq(f.pulses, 10**9)
    eq(f.level_pulses, 10**9)
    # Pumped messages in tenths: 10**9 pulses / 288 per L = 3472222.2 L, the rest kept.
    tenths = f.unsent_tenths()
    eq(tenths, 34722222)
    eq("%d.%d" % divmod(tenths, 10), "3472222.2")
    f.reported(tenths)
    eq(f.unsent_tenths(), 0)
    # The remainder is kept: 10**13 mod 288000 = 64000, plus 160 pulses: 5 tenths.
    c.counted = 160
    _simclock.advance(1000)
    f.tick()
    eq(f.unsent_tenths(), 5)
    # A single-precision accumulator (the ESP32's float, stored with array("f")) stops
    # adding pulses long before: what the float totals this replaced would have done.
    acc = array("f", [2.0**24])
    acc[0] += 1
    eq(acc[0], 2.0**24, "float32 loses the pulse")
