# Tank level from float switches on an MCP23017: sensor i is input bit i and reads 0 when
# wet. A sample every second; a new reading counts after 4 equal samples in a row.
from micropython import const
from time import ticks_add, ticks_diff, ticks_ms

# Malfunction bits (the original's, plus the flow meter's over-range in flow.py).
INCONSISTENT = const(0x01)  # a wet switch above a dry one
INIT_FAILED = const(0x02)  # the MCP23017 did not answer at start
READ_FAILED = const(0x04)  # it stopped answering
_CHIP = const(0x06)

_RETRY_FIRST_MS = const(10000)
_RETRY_MAX_MS = const(600000)


class Debounce:
    """A new value is taken once it has been sampled `n` times in a row."""

    def __init__(self, n=4):
        self.n = n
        self.reset()

    def reset(self):
        self.value = None
        self._candidate = None
        self._run = 0

    def sample(self, v):
        """True when the debounced value changed."""
        if v != self._candidate:
            self._candidate = v
            self._run = 0
        self._run += 1
        if self._run >= self.n and v != self.value:
            self.value = v
            return True
        return False


def highest_wet(bitmap, count):
    """(index of the highest wet switch or -1, True if a dry one is below it)."""
    top = -1
    for i in range(count):
        if not (bitmap >> i) & 1:
            top = i
    dry_below = top > 0 and bitmap & ((1 << top) - 1) != 0
    return top, dry_below


class Tank:
    """Level of a tank with float switches at `sensors` (ascending percentages)."""

    def __init__(self, expander, sensors, capacity, on_change=None):
        self.sensors = sensors
        self.capacity = capacity
        self.malfunction = 0
        self.level_pct = None  # None until the first debounced reading
        self._expander = expander
        self._on_change = on_change
        self._mask = (1 << len(sensors)) - 1
        self._debounce = Debounce(4)
        self._ready = False
        self._retry_ms = _RETRY_FIRST_MS
        self._retry_at = ticks_ms()
        self._start()

    @property
    def level_vol(self):
        pct = self.level_pct
        return None if pct is None else pct * self.capacity / 100

    def next_pct(self):
        """The percentage of the first switch above the level (100 at the top)."""
        pct = self.level_pct or 0
        for s in self.sensors:
            if s > pct:
                return s
        return 100

    def estimate(self, pumped):
        """(volume, pumped): the level's volume plus what was pumped since it was reached,
        capped at the next switch's volume (that switch is still dry)."""
        base = self.level_vol
        if base is None:
            return None, None
        room = self.next_pct() * self.capacity / 100 - base
        pumped = min(max(pumped, 0.0), room)
        return base + pumped, pumped

    def _start(self):
        try:
            self._expander.init()
        except OSError:
            self._fail(INIT_FAILED)
            return False
        self._ready = True
        self._retry_ms = _RETRY_FIRST_MS
        return True

    def _fail(self, bit):
        # Unknown level reads full: a fill pump driven from it stops.
        self.malfunction |= bit
        self._ready = False
        self._retry_at = ticks_add(ticks_ms(), self._retry_ms)
        self._retry_ms = min(self._retry_ms * 2, _RETRY_MAX_MS)
        self._debounce.reset()
        self._set(100)

    def sample(self):
        """Read the switches once (every second)."""
        if not self._ready:
            if ticks_diff(ticks_ms(), self._retry_at) < 0 or not self._start():
                return
        try:
            bits = self._expander.read() & self._mask
        except OSError:
            self._fail(READ_FAILED)
            return
        self.malfunction &= ~_CHIP
        if self._debounce.sample(bits):
            top, dry_below = highest_wet(bits, len(self.sensors))
            if dry_below:
                self.malfunction |= INCONSISTENT
            else:
                self.malfunction &= ~INCONSISTENT
            self._set(self.sensors[top] if top >= 0 else 0)

    def _set(self, pct):
        if pct != self.level_pct:
            old, self.level_pct = self.level_pct, pct
            if self._on_change is not None:
                self._on_change(old, pct)
