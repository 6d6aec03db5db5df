# Flow from the meter's pulses: the rate over a sliding window and the volumes pumped.
# `pulserate` is pulses per second at a flow of 1 unit/min, so 60 * pulserate pulses are
# one unit. A rate above `maxflow` is a meter fault (a loose wire, interference), not water.
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
        self.rejected = 0  # pulses too short to be water
        self._counter = counter
        self._counts = array("i", bytes(4 * _SLOTS))
        self._ms = array("i", bytes(4 * _SLOTS))
        self._slot = 0
        self._over = 0  # ticks until an over-range reading leaves the window
        self._last = ticks_ms()

    def tick(self):
        """Take the pulses counted since the last tick (every second)."""
        now = ticks_ms()
        ms = max(1, ticks_diff(now, self._last))
        self._last = now
        counted, rejected = self._counter.take()
        self.rejected += rejected
        if counted * 1000 > self.maxflow * self.pulserate * ms:
            self.malfunction |= OVER_RANGE
            self._over = _SLOTS
            counted = 0
        elif self._over:
            self._over -= 1
            if not self._over:
                self.malfunction &= ~OVER_RANGE
        i = self._slot
        self._counts[i] = counted
        self._ms[i] = ms
        self._slot = (i + 1) % _SLOTS
        volume = counted / (60 * self.pulserate)
        self.total += volume
        self.since_level += volume

    @property
    def rate(self):
        """unit/min over the window; None before 5 s of data or while the meter is faulty."""
        if self.malfunction:
            return None
        ms = sum(self._ms)
        if ms < _MIN_WINDOW_MS:
            return None
        return sum(self._counts) * 1000 / (ms * self.pulserate)

    def level_changed(self):
        self.since_level = 0.0
