# Pulse counting in a pin IRQ handler written in viper: an edge costs a few native
# instructions and allocates nothing. On the ESP32 the handler is scheduled (machine_pin.c's
# ISR only queues it): it runs from the VM, tens of ms after the edge behind gc, flash
# writes or a TLS handshake. So it reads neither the pin nor the clock, which tell the state
# when it runs, not at the edge: it counts calls, one per rising edge (trigger IRQ_RISING).
# Glitches are judged by rate over whole seconds by the caller (h2o.flow), which needs no
# edge's time.
import micropython
from array import array
from machine import Pin

# The handler is the only writer of the count and only ever adds: take() reads it and keeps
# what it read, so no edge is lost or counted twice whenever a handler runs.
_EDGES = const(0)


def _edge_handler(state):
    @micropython.viper
    def edge(pin):
        s = ptr32(state)
        s[_EDGES] += 1

    return edge


class PulseCounter:
    """Rising edges on `pin` (a meter's pulses)."""

    def __init__(self, pin):
        self._state = array("i", (0,))
        self._taken = 0
        self._pin = pin
        pin.irq(_edge_handler(self._state), Pin.IRQ_RISING)

    def take(self):
        """Pulses since the last take (the 32-bit count wraps; the difference does not)."""
        now = self._state[_EDGES]
        n = (now - self._taken) & 0xFFFFFFFF
        self._taken = now
        return n

    def close(self):
        self._pin.irq(None)
