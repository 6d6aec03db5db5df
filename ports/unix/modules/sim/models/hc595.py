# 74HC595 chain (serial in, latched parallel out): SER sampled on SRCLK rising edges, the
# shift register copied to the outputs on RCLK rising edges, OE (active low) gates them.
# Every latch edge is a model event (state: latched outputs, edge count), so a test sees a
# glitch on the outputs during a reboot. latch_pullup=True: RCLK floats high while the
# ESP32 resets (a strapping pull-up), latching whatever the shift register holds at boot.
import sim
from sim.models import PinModel

_HISTORY = const(64)


class HC595(PinModel):
    def __init__(self, ser, clk, latch, oe=None, nbits=8, latch_pullup=False, **args):
        super().__init__(**args)
        self.ser, self.clk, self.latch_pin, self.oe = ser, clk, latch, oe
        self.mask = (1 << nbits) - 1
        self.latch_pullup = latch_pullup
        self.levels = {ser: 0, clk: 0, latch: 0}
        if oe is not None:
            self.levels[oe] = 1  # a board pull-up keeps the outputs off until driven low
        self.shift = 0
        self.latched = 0
        self.edges = 0
        self.history = []  # latched values, newest last (bounded)
        self.watch(*self.levels)
        if oe is not None:
            self.drive(oe, 1)  # the pull-up, until the ESP32 drives OE

    def restore(self, state):
        if sim.BOOT.get("reset_cause") == 1:
            return  # power cycle: the chips powered up empty
        self.shift = state.get("shift", 0)
        self.latched = state.get("latched", 0)
        self.edges = state.get("edges", 0)
        if self.latch_pullup:
            self._latch()

    def _state(self):
        return {"shift": self.shift, "latched": self.latched, "edges": self.edges,
                "enabled": self.enabled()}

    def enabled(self):
        return self.oe is None or not self.levels[self.oe]

    def outputs(self):
        """The output levels (None while OE is high: the outputs float)."""
        return self.latched if self.enabled() else None

    def _latch(self):
        self.latched = self.shift
        self.edges += 1
        self.history.append(self.latched)
        if len(self.history) > _HISTORY:
            self.history.pop(0)
        self.save(self._state())

    def on_pin(self, pin, value):
        rising = value and not self.levels.get(pin)
        self.levels[pin] = value
        if not rising:
            if pin == self.oe:
                self.save(self._state())
            return
        if pin == self.clk:
            self.shift = ((self.shift << 1) | self.levels[self.ser]) & self.mask
        elif pin == self.latch_pin:
            self._latch()
        elif pin == self.oe:
            self.save(self._state())
