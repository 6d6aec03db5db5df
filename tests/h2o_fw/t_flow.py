# Flow logic: rate over the window, volumes, over-range; fed by a counter stand-in.
import _simclock

from h2o.flow import Flow, OVER_RANGE, min_width_us
from fwunit import eq, near

RATE = 4.8  # pulses per second at 1 L/min
MAX = 60.0


class Counts:
    """Stands in for epx.pulse.PulseCounter: take() returns what the test queued."""

    def __init__(self):
        self.counted = 0
        self.rejected = 0

    def take(self):
        c, r = self.counted, self.rejected
        self.counted = self.rejected = 0
        return c, r


def run(flow, counts, hz, seconds):
    for _ in range(seconds):
        counts.counted += hz
        _simclock.advance(1000)
        flow.tick()


def test_min_width():
    eq(min_width_us(60.0, 4.8), 868)  # a quarter of the 3472 us period at 288 Hz


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


def test_rejected_are_kept_apart():
    c = Counts()
    f = Flow(c, RATE, MAX)
    c.rejected = 7
    run(f, c, 10, 1)
    eq(f.rejected, 7)
    near(f.total, 10 / 288, 0.001)
