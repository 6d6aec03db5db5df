# Pulse counting in an IRQ handler: viper, so a pulse costs microseconds, not a bytecode run.
import micropython
from array import array
from machine import Pin, disable_irq, enable_irq
from time import ticks_us

_COUNT = const(0)
_LAST = const(1)
_MIN_US = const(2)
_REJECTED = const(3)
_TICKS_MASK = const(0x3FFFFFFF)


@micropython.viper
def _record(state: ptr32, now: int):
    # ticks_us wraps at 2**30: the masked difference stays right across the wrap.
    if ((now - state[_LAST]) & _TICKS_MASK) < state[_MIN_US]:
        state[_REJECTED] += 1
    else:
        state[_COUNT] += 1
    state[_LAST] = now


class PulseCounter:
    """Rising edges on `pin`, ignoring any closer than `min_width_us` to the previous one."""

    def __init__(self, pin, min_width_us):
        self._state = array("i", (0, 0, min_width_us, 0))
        self._pin = pin
        pin.irq(self._irq, Pin.IRQ_RISING)

    def _irq(self, pin):
        _record(self._state, ticks_us())

    def take(self):
        """Counted and rejected pulses since the last take, read without losing one."""
        state = self._state
        irq = disable_irq()
        count, rejected = state[_COUNT], state[_REJECTED]
        state[_COUNT] = 0
        state[_REJECTED] = 0
        enable_irq(irq)
        return count, rejected
