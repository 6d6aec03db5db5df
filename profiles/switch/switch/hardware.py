# The boards of boards.py as two operations: read() the inputs (bitmap, 1 = active) and
# write() the outputs (bitmap, 1 = on). Nothing drives an output before the first write(),
# which the caller makes with the state restored from RTC memory or NVS.
from machine import Pin
from switch import boards

_NO_PULL = const(34)  # GPIO 34..39 have no internal pull resistors


def _hold(pin, level):
    # A held pad keeps its level through soft, watchdog and panic resets.
    pin.init(hold=False)
    pin.value(level)
    pin.init(hold=True)


class GPIOBoard:
    def __init__(self, spec):
        self.inputs = []
        self.invert = 0
        for i, (n, active_low) in enumerate(spec["inputs"]):
            pull = Pin.PULL_UP if active_low and n < _NO_PULL else None
            self.inputs.append(Pin(n, Pin.IN, pull))
            self.invert |= active_low << i
        self.n_inputs = len(self.inputs)
        self.n_outputs = len(spec["outputs"])
        self._spec = spec["outputs"]
        self._outputs = None
        self._written = 0

    def read(self):
        bits = 0
        inputs = self.inputs
        for i in range(len(inputs)):
            bits |= inputs[i].value() << i
        return bits ^ self.invert

    def write(self, bits):
        if self._outputs is None:
            self._outputs = [Pin(n, Pin.OUT, value=bits >> i & 1, hold=True)
                             for i, n in enumerate(self._spec)]
        else:
            changed = bits ^ self._written
            for i, p in enumerate(self._outputs):
                if changed >> i & 1:
                    _hold(p, bits >> i & 1)
        self._written = bits


class ChainBoard:
    """74HC165 inputs and 74HC595 outputs on one clock (modules/third/shiftreg.py)."""

    def __init__(self, spec, outputs):
        import shiftreg

        self.n_inputs = spec["n_inputs"]
        self.n_outputs = spec["n_outputs"]
        self.chain = shiftreg.Chain(**spec["chain"])
        # Reads shift this into the 595s (never latched by a read): a stray latch edge,
        # even during a reset, shows the outputs they already show.
        self.chain.out = outputs
        self.invert = ((1 << self.n_inputs) - 1) if spec.get("inputs_active_low") else 0

    def read(self):
        return (self.chain.transfer() ^ self.invert) & ((1 << self.n_inputs) - 1)

    def write(self, bits):
        self.chain.write(bits)


def open_board(name, outputs):
    """The board called `name` (ValueError if unknown), outputs about to be `outputs`."""
    spec = boards.board(name)
    if "chain" in spec:
        return ChainBoard(spec, outputs)
    return GPIOBoard(spec)
