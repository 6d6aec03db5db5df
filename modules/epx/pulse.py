# Pulse counting in a pin IRQ handler written in viper: an edge costs a few native
# instructions and allocates nothing. On the ESP32 the handler is scheduled (machine_pin.c's
# ISR only queues it): it runs from the VM, tens of ms after the edge behind gc, flash
# writes or a TLS handshake. So it does not read the pin, which tells the state when it
# runs, not at the edge: it counts calls, one per rising edge (trigger IRQ_RISING).
# Glitches are judged by rate over whole seconds by the caller (h2o.flow), which needs no
# edge's time.
# A contact that bounces (a reed meter: 1-5 ms of make and break) gives several edges per
# transition. With a debounce window the handler takes both edges and counts transitions
# instead: an edge after at least `debounce_ms` of quiet (by the clock when its handler
# runs: a burst's handlers run together as its edges came) is the next transition, the
# others are its bounce; every second transition from the level at start is a pulse.
import micropython
from array import array
from machine import Pin
from time import ticks_ms

# The handler is the only writer of the count and only ever adds: take() reads it and keeps
# what it read, so no edge is lost or counted twice whenever a handler runs.
_EDGES = const(0)
_LAST_MS = const(1)
_LEVEL = const(2)
_TICKS_MASK = const(0x3FFFFFFF)  # ticks_ms() wraps at 2**30


def _edge_handler(state):
    @micropython.viper
    def edge(pin):
        s = ptr32(state)
        s[_EDGES] += 1

    return edge


def _debounced_handler(state, window_ms):
    @micropython.viper
    def edge(pin):
        s = ptr32(state)
        now = int(ticks_ms())
        quiet = (now - s[_LAST_MS]) & _TICKS_MASK
        s[_LAST_MS] = now
        if quiet >= int(window_ms):
            s[_LEVEL] ^= 1
            if s[_LEVEL]:
                s[_EDGES] += 1

    return edge


class PulseCounter:
    """Rising edges on `pin` (a meter's pulses); with debounce_ms, rising transitions of a
    contact whose bounce is shorter than that, as are its pulses' high and low halves."""

    def __init__(self, pin, debounce_ms=0):
        self._state = array("i", (0, 0, 0))
        self._taken = 0
        self._pin = pin
        if debounce_ms:
            self._state[_LAST_MS] = ticks_ms() - debounce_ms
            self._state[_LEVEL] = pin.value()
            pin.irq(_debounced_handler(self._state, debounce_ms), Pin.IRQ_RISING | Pin.IRQ_FALLING)
        else:
            pin.irq(_edge_handler(self._state), Pin.IRQ_RISING)

    def take(self):
        """Pulses since the last take (the 32-bit count wraps; the difference does not)."""
        now = self._state[_EDGES]
        n = (now - self._taken) & 0xFFFFFFFF
        self._taken = now
        return n

    def close(self):
        self._pin.irq(None)
