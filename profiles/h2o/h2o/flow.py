# Flow from the meter's pulses: the rate over a sliding window and the volumes pumped.
# `pulserate` is pulses per second at a flow of 1 unit/min, so 60 * pulserate pulses are
# one unit. A window rate above `maxflow` is a meter fault (a loose wire, interference),
# not water: its pulses are not counted as volume.
from array import array
from micropython import const
from time import ticks_diff, ticks_ms

OVER_RANGE = const(0x08)
_SLOTS = const(10)  # ticks of about 1 s in the window
_MIN_WINDOW_MS = const(5000)


def min_width_us(maxflow, pulserate):
    """The shortest real pulse: a quarter of the period at maxflow (meters give ~50% duty)."""
    return int(250000 / (maxflow * pulserate))


class Flow:
    def __init__(self, counter, pulserate, maxflow):
        self.pulserate = pulserate
        self.maxflow = maxflow
        self.malfunction = 0
        self.total = 0.0  # volume since start
        self.since_level = 0.0  # volume since the tank level last changed
        self.unsent = 0.0  # volume not yet in a Pumped message
        self.rejected = 0  # pulses too short to be water
        self._counter = counter
        self._counts = array("i", bytes(4 * _SLOTS))
        self._ms = array("i", bytes(4 * _SLOTS))
        self._slot = 0
        self._last = ticks_ms()

    def tick(self):
        """Take the pulses counted since the last tick (every second)."""
        now = ticks_ms()
        ms = max(1, ticks_diff(now, self._last))
        self._last = now
        counted, rejected = self._counter.take()
        self.rejected += rejected
        i = self._slot
        self._counts[i] = counted
        self._ms[i] = ms
        self._slot = (i + 1) % _SLOTS
        rate = self._window_rate()
        if rate is not None and rate > self.maxflow:
            if not self.malfunction:
                self.malfunction = OVER_RANGE
                # The seconds that were too fast were not water: take them back.
                self._add(-self._too_fast(i))
            return
        self.malfunction = 0
        self._add(counted)

    def _too_fast(self, skip):
        # Pulses of the window's ticks (but `skip`) whose own rate was above maxflow.
        limit = self.maxflow * self.pulserate
        n = 0
        for i in range(_SLOTS):
            if i != skip and self._counts[i] * 1000 > limit * self._ms[i]:
                n += self._counts[i]
        return n

    def _add(self, pulses):
        volume = pulses / (60 * self.pulserate)
        self.total = max(0.0, self.total + volume)
        self.since_level = max(0.0, self.since_level + volume)
        self.unsent = max(0.0, self.unsent + volume)

    def _window_rate(self):
        ms = sum(self._ms)
        if ms < _MIN_WINDOW_MS:
            return None
        return sum(self._counts) * 1000 / (ms * self.pulserate)

    @property
    def rate(self):
        """unit/min over the window; None before 5 s of data or while the meter is faulty."""
        return None if self.malfunction else self._window_rate()

    def level_changed(self):
        self.since_level = 0.0
