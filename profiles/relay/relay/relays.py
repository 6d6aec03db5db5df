# Timed relays: TurnOnWithTimeout <seconds> switches relay i on for that long (clamped to
# its maximum; 0 or less: off; anything but an integer: ignored); each command restarts
# the time. State and time left are kept (switch.keep): after a reset a relay is on with
# the time it had left; after a power cycle with the time of its last command, or what it
# had left at the last reset since.
from time import ticks_add, ticks_diff
from machine import Pin

_REFRESH_MS = const(1000)  # how stale the time left in RTC memory may be


def seconds(payload):
    """The integer in payload (bytes or str), None for anything else."""
    try:
        text = payload.decode() if not isinstance(payload, str) else payload
        text = text.strip()
        if not text or not (text.isdigit() or text[0] in "+-" and text[1:].isdigit()):
            return None
        return int(text)
    except (UnicodeError, ValueError):
        return None


class Relays:
    """pins: GPIO numbers (active low); max_s: per relay; state, left: keep.Kept (on/off,
    ms left); on_change(i, on) tells the world."""

    def __init__(self, pins, max_s, state, left, on_change):
        self.max_s = max_s
        self.state = state
        self.left = left
        self.on_change = on_change
        self.deadline = [None] * len(pins)
        self._refreshed = 0
        self._pins_spec = pins
        self.pins = None

    def start(self, now):
        """Drive the relays as kept: on ones with the time they had left."""
        for i in range(len(self._pins_spec)):
            left = self.left.values[i]
            if self.state.values[i] and left > 0:
                self.deadline[i] = ticks_add(now, left)
            elif self.state.values[i]:
                self.state.set(i, 0)
        # Active low, set before the pin becomes an output: an off relay never clicks.
        self.pins = [Pin(n, Pin.OUT, value=0 if self.deadline[i] is not None else 1, hold=True)
                     for i, n in enumerate(self._pins_spec)]
        self._refreshed = now

    def is_on(self, i):
        return self.deadline[i] is not None

    def left_ms(self, i, now):
        d = self.deadline[i]
        return 0 if d is None else max(0, ticks_diff(d, now))

    def command(self, i, payload, now):
        """TurnOnWithTimeout for relay i; False when the payload is not an integer."""
        s = seconds(payload)
        if s is None:
            return False
        s = min(s, self.max_s[i])
        if s <= 0:
            self._set(i, None, now)
        else:
            self._set(i, ticks_add(now, s * 1000), now)
            self.left.set(i, s * 1000)  # durable: a power cycle restarts this command
        return True

    def _set(self, i, deadline, now):
        was = self.deadline[i] is not None
        self.deadline[i] = deadline
        on = deadline is not None
        if on != was:
            p = self.pins[i]
            p.init(hold=False)
            p.value(0 if on else 1)
            p.init(hold=True)
            self.state.set(i, 1 if on else 0)
            if not on:
                self.left.set(i, 0)
            self.on_change(i, on)

    def tick(self, now):
        """Switch off expired relays; refresh the time left in RTC memory. Returns ms until
        the next call is needed (None: no relay is on)."""
        nearest = None
        for i, d in enumerate(self.deadline):
            if d is None:
                continue
            left = ticks_diff(d, now)
            if left <= 0:
                self._set(i, None, now)
                continue
            nearest = left if nearest is None else min(nearest, left)
        if nearest is not None and ticks_diff(now, self._refreshed) >= _REFRESH_MS:
            self._refreshed = now
            for i in range(len(self.deadline)):
                if self.deadline[i] is not None:
                    self.left.values[i] = self.left_ms(i, now)
            self.left.store()
        return None if nearest is None else min(nearest, _REFRESH_MS)
