# 74HC165 (parallel in) and 74HC595 (parallel out) chains sharing one shift clock, bit-banged
# in viper through the ESP32's GPIO registers (machine.mem32): a transfer of 8 bits takes
# microseconds, so inputs can be polled every few ms without delaying the loop.
#
# One transfer loads the 165s, then per clock samples QH and presents the next output bit
# on SER: the 595s' shift register always ends up holding the outputs, so a stray latch
# edge (a strapping pull-up while the chip resets) latches the same outputs, not input
# bits. Against that edge the latch pad is also held low between latches.
# Bit i of a word is pin D(i % 8) / Q(i % 8) of chip i // 8 (chip 0 next to the ESP32).
import micropython
from array import array
from machine import Pin, mem32
from gpioregs import clr_reg, in_reg, mask, set_reg

# The plan: register addresses and bit masks of each line, read by the viper code.
_CLK_SET = const(0)
_CLK_CLR = const(1)
_CLK = const(2)
_LOAD_SET = const(3)
_LOAD_CLR = const(4)
_LOAD = const(5)
_QH_IN = const(6)
_QH = const(7)
_SER_SET = const(8)
_SER_CLR = const(9)
_SER = const(10)
_LATCH_SET = const(11)
_LATCH_CLR = const(12)
_LATCH = const(13)
_PLAN = const(14)

MAX_BITS = const(24)


@micropython.viper
def _transfer(mem, plan: ptr32, out: int, nbits: int) -> int:
    clk_set = plan[_CLK_SET]
    clk_clr = plan[_CLK_CLR]
    clk = plan[_CLK]
    ser_set = plan[_SER_SET]
    ser_clr = plan[_SER_CLR]
    ser = plan[_SER]
    qh_in = plan[_QH_IN]
    qh = plan[_QH]
    if plan[_LOAD]:
        mem[plan[_LOAD_CLR]] = plan[_LOAD]  # SH/LD low: the 165s sample their inputs
        mem[plan[_LOAD_SET]] = plan[_LOAD]
    value = 0
    j = 0
    while j < nbits:
        if qh and int(mem[qh_in]) & qh:
            value |= 1 << (j ^ 7)
        if ser:
            if (out >> (nbits - 1 - j)) & 1:
                mem[ser_set] = ser
            else:
                mem[ser_clr] = ser
        mem[clk_set] = clk
        mem[clk_clr] = clk
        j += 1
    return value


@micropython.viper
def _pulse(mem, plan: ptr32, at: int):
    mem[plan[at + 0]] = plan[at + 2]
    mem[plan[at + 1]] = plan[at + 2]


class Chain:
    """Shift-register chains of `nbits` (8 per chip) on a shared clock.

    clk: shift clock of both; load: 165 SH/LD (active low); qh: 165 serial output;
    ser: 595 serial input; latch: 595 RCLK (rising edge latches); oe: 595 OE (active low).
    Leave out the pins of a chip the board lacks. Creating a Chain does not touch the 595s:
    their outputs stay latched until write().
    """

    def __init__(self, clk, nbits=8, load=None, qh=None, ser=None, latch=None, oe=None):
        if not 0 < nbits <= MAX_BITS:
            raise ValueError("nbits must be 1..%d" % MAX_BITS)
        self.nbits = nbits
        self.out = 0
        plan = self._plan = array("i", bytes(4 * _PLAN))
        self._pins = []
        for pin, at, level in ((clk, _CLK_SET, 0), (load, _LOAD_SET, 1), (ser, _SER_SET, 0),
                               (latch, _LATCH_SET, 0)):
            if pin is not None:
                self._pins.append(Pin(pin, Pin.OUT, value=level))
                plan[at] = set_reg(pin)
                plan[at + 1] = clr_reg(pin)
                plan[at + 2] = mask(pin)
        # RCLK's pad is held low between latches, through resets too: no stray latch edge.
        self._latch = None if latch is None else Pin(latch, Pin.OUT, value=0, hold=True)
        if qh is not None:
            self._pins.append(Pin(qh, Pin.IN))
            plan[_QH_IN] = in_reg(qh)
            plan[_QH] = mask(qh)
        self._oe = oe
        self._oe_pin = None

    def transfer(self, out=None):
        """Read the inputs; shift `out` (default: the latched outputs) into the 595s."""
        return _transfer(mem32, self._plan, self.out if out is None else out, self.nbits)

    def write(self, out):
        """Latch `out` on the 595 outputs (and enable them); return the inputs read."""
        value = self.transfer(out)
        if self._latch is not None:
            self._latch.init(hold=False)
            _pulse(mem32, self._plan, _LATCH_SET)
            self._latch.init(hold=True)
        self.out = out
        self.enable()
        return value

    def enable(self):
        # OE stays driven (and held) low from the first latch on, through resets too.
        if self._oe is not None and self._oe_pin is None:
            self._oe_pin = Pin(self._oe, Pin.OUT, value=0, hold=True)
