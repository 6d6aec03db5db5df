# Pulse counting in a pin IRQ handler written in viper: an edge costs a few native
# instructions and allocates nothing. A pulse counts when it stayed high for at least
# min_width_us, so contact bounce and interference spikes are not counted as water.
import micropython
from array import array
from machine import Pin, disable_irq, enable_irq
from time import ticks_us

# The handler is the only writer of these words while the IRQ is on; take() reads and
# clears the counters with interrupts off.
_COUNTED = const(0)
_REJECTED = const(1)
_RISE_US = const(2)
_HIGH = const(3)
_MIN_US = const(4)


def _edge_handler(state, level, clock=ticks_us):
    # level: the pin's bound value method and clock, held by the closure: no look-ups per edge.
    @micropython.viper
    def edge(pin):
        s = ptr32(state)
        now = int(clock())
        if int(level()):
            s[_RISE_US] = now
            s[_HIGH] = 1
        elif s[_HIGH]:
            s[_HIGH] = 0
            # ticks_us wraps at 2**30: the masked difference stays right across the wrap.
            if ((now - s[_RISE_US]) & 0x3FFFFFFF) < s[_MIN_US]:
                s[_REJECTED] += 1
            else:
                s[_COUNTED] += 1
        else:
            # A spike that was over before the handler ran: no rise was seen.
            s[_REJECTED] += 1

    return edge


class PulseCounter:
    """Pulses on `pin` at least `min_width_us` long (high time, rising to falling edge)."""

    def __init__(self, pin, min_width_us):
        self._state = array("i", (0, 0, 0, 0, min_width_us))
        self._pin = pin
        pin.irq(_edge_handler(self._state, pin.value), Pin.IRQ_RISING | Pin.IRQ_FALLING)

    def take(self):
        """(counted, rejected) since the last take: no pulse is lost or counted twice."""
        state = self._state
        irq = disable_irq()
        counted = state[_COUNTED]
        rejected = state[_REJECTED]
        state[_COUNTED] = 0
        state[_REJECTED] = 0
        enable_irq(irq)
        return counted, rejected

    def close(self):
        self._pin.irq(None)
