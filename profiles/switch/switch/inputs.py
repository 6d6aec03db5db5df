# Input debouncing on a polled bitmap: a changed input counts once its new level has held
# for `debounce_ms`; a pressed input held for `longpress_ms` counts as a long press (once).
from time import ticks_diff

PRESS = const(1)
RELEASE = const(0)
LONG = const(2)


class Debouncer:
    def __init__(self, n, debounce_ms, longpress_ms, initial=0, now=0):
        self.n = n
        self.debounce_ms = debounce_ms
        self.longpress_ms = longpress_ms
        self.stable = initial
        self._candidate = initial
        self._since = [now] * n  # when the candidate level of input i appeared
        self._pressed_at = [now] * n
        self._long_due = 0  # inputs pressed and not yet reported as long presses

    def update(self, raw, now, events):
        """Feed one poll (bitmap, 1 = active); append (input, PRESS/RELEASE/LONG) to events."""
        changed = (raw ^ self._candidate) & ((1 << self.n) - 1)
        self._candidate ^= changed
        pending = self._candidate ^ self.stable
        for i in range(self.n):
            bit = 1 << i
            if changed & bit:
                self._since[i] = now
            if pending & bit and ticks_diff(now, self._since[i]) >= self.debounce_ms:
                self.stable ^= bit
                if self.stable & bit:
                    events.append((i, PRESS))
                    self._pressed_at[i] = now
                    self._long_due |= bit
                else:
                    events.append((i, RELEASE))
                    self._long_due &= ~bit
            if self._long_due & bit and ticks_diff(now, self._pressed_at[i]) >= self.longpress_ms:
                self._long_due &= ~bit
                events.append((i, LONG))
        return events
