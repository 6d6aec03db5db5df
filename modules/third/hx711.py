# Avia HX711 24-bit load-cell ADC, bit-banged in viper through the ESP32's GPIO registers
# (machine.mem32). DOUT low means a conversion is ready; 24 clocks shift it out MSB first,
# 1 to 3 more choose the channel and gain of the next one. SCK must not stay high for more
# than 60 us (the chip powers down), so the transfer runs with interrupts off: ~30 us.
import micropython
from array import array
from machine import Pin, mem32, disable_irq, enable_irq
from gpioregs import clr_reg, in_reg, mask, set_reg

_SCK_SET = const(0)
_SCK_CLR = const(1)
_SCK = const(2)
_DOUT_IN = const(3)
_DOUT = const(4)
_PLAN = const(5)

# Pulses per read for each gain: channel A at 128 or 64, channel B at 32.
PULSES = {128: 25, 64: 27, 32: 26}


@micropython.viper
def shift_in(mem, plan: ptr32, pulses: int) -> int:
    sck_set = plan[_SCK_SET]
    sck_clr = plan[_SCK_CLR]
    sck = plan[_SCK]
    dout_in = plan[_DOUT_IN]
    dout = plan[_DOUT]
    value = 0
    i = 0
    while i < pulses:
        mem[sck_set] = sck
        mem[sck_clr] = sck
        if i < 24:
            value <<= 1
            if int(mem[dout_in]) & dout:
                value |= 1
        i += 1
    return value


class HX711:
    def __init__(self, dout, sck, gain=128):
        if gain not in PULSES:
            raise ValueError("gain: 128, 64 or 32")
        self._pulses = PULSES[gain]
        self._dout = Pin(dout, Pin.IN)
        self._sck = Pin(sck, Pin.OUT, value=0)
        plan = self._plan = array("i", bytes(4 * _PLAN))
        plan[_SCK_SET] = set_reg(sck)
        plan[_SCK_CLR] = clr_reg(sck)
        plan[_SCK] = mask(sck)
        plan[_DOUT_IN] = in_reg(dout)
        plan[_DOUT] = mask(dout)

    def ready(self):
        return self._dout() == 0

    def read(self):
        """The conversion waiting (check ready() first): a signed 24-bit value."""
        if not self.ready():
            raise OSError("HX711 not ready")
        irq = disable_irq()
        try:
            value = shift_in(mem32, self._plan, self._pulses)
        finally:
            enable_irq(irq)
        return value - 0x1000000 if value & 0x800000 else value

    def power_down(self):
        self._sck(1)

    def power_up(self):
        self._sck(0)
