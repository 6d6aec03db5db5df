# Flow from the meter's pulses: the rate over a sliding window and the volumes pumped.
# `pulserate` is pulses per second at a flow of 1 unit/min, so 60 * pulserate pulses are
# one unit. A window rate above `maxflow` is a meter fault (a loose wire, interference),
# not water: its pulses are not counted as volume. Volumes are kept as integer pulses:
# single-precision floats (the ESP32's) would stop adding single pulses at 2**24.
from array import array
from micropython import const
from time import ticks_diff, ticks_ms

OVER_RANGE = const(0x08)
_SLOTS = const(10)  # ticks of about 1 s in the window
_MIN_WINDOW_MS = const(5000)
# Pulses a tick may hold beyond maxflow and still be water: the handlers are scheduled, so
# up to the 8 the IRQ queue holds move from one tick into the next, plus the one at the edge.
_SLACK = const(9)


class Flow:
    def __init__(self, counter, pulserate, maxflow):
        self.pulserate = pulserate
        self.maxflow = maxflow
        self.malfunction = 0
        self.milli_ppu = round(60000 * pulserate)  # pulses per 1000 units
        self.pulses = 0  # since start
        self.level_pulses = 0  # since the tank level last changed
        self._unsent = 0  # tenths of a unit not yet in a Pumped message, x milli_ppu
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
        counted = self._counter.take()
        i = self._slot
        self._counts[i] = counted
        self._ms[i] = ms
        self._slot = (i + 1) % _SLOTS
        if self._window_ms() >= _MIN_WINDOW_MS and self._over(sum(self._counts), self._window_ms()):
            if not self.malfunction:
                self.malfunction = OVER_RANGE
                # The seconds that were too fast were not water: take them back.
                self._add(-self._too_fast(i))
            return
        self.malfunction = 0
        self._add(counted)

    def _over(self, pulses, ms):
        return pulses - _SLACK > self.maxflow * self.pulserate * ms / 1000

    def _too_fast(self, skip):
        # Pulses of the window's ticks (but `skip`) whose own rate was above maxflow.
        n = 0
        for i in range(_SLOTS):
            if i != skip and self._over(self._counts[i], self._ms[i]):
                n += self._counts[i]
        return n

    def _window_ms(self):
        return sum(self._ms)

    def _add(self, pulses):
        self.pulses = max(0, self.pulses + pulses)
        self.level_pulses = max(0, self.level_pulses + pulses)
        self._unsent = max(0, self._unsent + 10000 * pulses)

    def volume(self, pulses):
        return pulses * 1000 / self.milli_ppu

    @property
    def total(self):
        """Volume since start (unit)."""
        return self.volume(self.pulses)

    @property
    def since_level(self):
        """Volume since the tank level last changed (unit)."""
        return self.volume(self.level_pulses)

    def unsent_tenths(self):
        """Whole tenths of a unit pumped and not yet reported."""
        return self._unsent // self.milli_ppu

    def reported(self, tenths):
        """A Pumped message of `tenths` went out: the remainder stays for the next one."""
        self._unsent = max(0, self._unsent - tenths * self.milli_ppu)

    def _window_rate(self):
        ms = self._window_ms()
        if ms < _MIN_WINDOW_MS:
            return None
        return sum(self._counts) * 1000 / (ms * self.pulserate)

    @property
    def rate(self):
        """unit/min over the window; None before 5 s of data or while the meter is faulty."""
        return None if self.malfunction else self._window_rate()

    def level_changed(self):
        self.level_pulses = 0
