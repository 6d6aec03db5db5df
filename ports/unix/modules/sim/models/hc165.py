# 74HC165 chain (parallel in, serial out): SH/LD low loads the inputs, each CLK rising edge
# (with SH/LD high and CLK INH low) shifts one place, QH shows D7 of chip 0 first, then D6,
# ..., then chip 1's D7. Input bit i is pin D(i % 8) of chip i // 8. The inputs are state
# the host keeps across boots (switches stay where they are).
from sim.models import PinModel


class HC165(PinModel):
    def __init__(self, clk, load, qh, inh=None, nbits=8, inputs=0, **args):
        super().__init__(**args)
        self.clk, self.load, self.qh, self.inh = clk, load, qh, inh
        self.nbits = nbits
        self.inputs = inputs
        self.levels = {clk: 0, load: 1}
        if inh is not None:
            self.levels[inh] = 0
        self.reg = 0
        self.pos = 0
        self.watch(*self.levels)
        self._out()

    def restore(self, state):
        self.inputs = state.get("inputs", self.inputs)
        self._out()

    def set_inputs(self, bits):
        self.inputs = bits
        if not self.levels[self.load]:
            self.reg = bits
            self._out()
        self.save({"inputs": bits})

    def set_input(self, i, value):
        self.set_inputs(self.inputs | 1 << i if value else self.inputs & ~(1 << i))

    def _out(self):
        bit = (self.reg >> (self.pos ^ 7)) & 1 if self.pos < self.nbits else 0
        self.drive(self.qh, bit)

    def on_pin(self, pin, value):
        rising = value and not self.levels.get(pin)
        self.levels[pin] = value
        if pin == self.load:
            if not value:
                self.reg = self.inputs
                self.pos = 0
                self._out()
        elif pin == self.clk and rising and self.levels[self.load]:
            if self.inh is None or not self.levels[self.inh]:
                self.pos += 1
                self._out()
