# MCP23017 16-bit I/O expander at register level: IOCON.BANK 0 and 1 addressing,
# sequential or byte mode, IODIR, IPOL, GPPU, GPIO, OLAT. What an input reads: the level
# the world drives (a closed switch pulls it low), else the pull-up, else a floating pin
# reading 0. Faults: absent (no ACK: ENODEV from the bus) or failing (ETIMEDOUT).
from errno import ETIMEDOUT
from sim.models import I2CModel

# Bank 0 register numbers; port B is the next register.
_IODIR = const(0x00)
_IPOL = const(0x02)
_IOCON = const(0x0A)
_GPPU = const(0x0C)
_GPIO = const(0x12)
_OLAT = const(0x14)
_NREGS = const(0x16)
_BANK = const(0x80)
_SEQOP = const(0x20)


def _bank1(reg):
    # Bank 1 address -> bank 0 register number (None if unimplemented).
    port, r = reg >> 4, reg & 0x0F
    if port > 1 or r > 0x0A:
        return None
    return r * 2 + port


class MCP23017(I2CModel):
    def __init__(self, inputs=0xFFFF, floating=0, absent=False, failing=False, **args):
        super().__init__(**args)
        self.regs = bytearray(_NREGS)
        self.regs[_IODIR] = self.regs[_IODIR + 1] = 0xFF  # power-on: all inputs
        self.pointer = 0
        self.inputs = inputs  # driven levels, bit 15..8 = A7..A0, 7..0 = B7..B0
        self.floating = floating  # pins nothing drives (read the pull-up or 0)
        self.present = not absent
        self.failing = failing
        self.reads = 0  # read transactions that returned input levels

    def restore(self, state):
        self.inputs = state.get("inputs", self.inputs)
        self.floating = state.get("floating", self.floating)
        self.present = not state.get("absent", not self.present)
        self.failing = state.get("failing", self.failing)
        self.reads = state.get("reads", 0)

    def _save(self):
        # Also after every read of the inputs: a test can wait for the firmware's samples.
        self.save({"inputs": self.inputs, "floating": self.floating, "absent": not self.present,
                   "failing": self.failing, "reads": self.reads})

    # --- the bus ---------------------------------------------------------------------------

    def _reg(self, address):
        if self.regs[_IOCON] & _BANK:
            return _bank1(address)
        return address if address < _NREGS else None

    def _advance(self):
        if self.regs[_IOCON] & _SEQOP:
            if not self.regs[_IOCON] & _BANK:
                self.pointer ^= 1  # byte mode, bank 0: toggles within the A/B pair
            return
        if self.regs[_IOCON] & _BANK:
            self.pointer = 0x10 if self.pointer == 0x0A else (0 if self.pointer == 0x1A else self.pointer + 1)
        else:
            self.pointer = (self.pointer + 1) % _NREGS

    def write(self, buf):
        if self.failing:
            raise OSError(ETIMEDOUT)
        if not buf:
            return
        self.pointer = buf[0]
        for b in buf[1:]:
            reg = self._reg(self.pointer)
            if reg is not None:
                if reg in (_IOCON, _IOCON + 1):
                    self.regs[_IOCON] = self.regs[_IOCON + 1] = b & 0xFE
                elif reg in (_GPIO, _GPIO + 1):
                    self.regs[reg + 2] = b  # writing GPIO writes the output latch
                else:
                    self.regs[reg] = b
            self._advance()

    def read(self, n):
        if self.failing:
            raise OSError(ETIMEDOUT)
        out = bytearray(n)
        levels = False
        for i in range(n):
            reg = self._reg(self.pointer)
            if reg is None:
                out[i] = 0
            elif reg in (_GPIO, _GPIO + 1):
                out[i] = self._port(reg - _GPIO)
                levels = True
            else:
                out[i] = self.regs[reg]
            self._advance()
        if levels:
            self.reads += 1
            self._save()
        return out

    def _port(self, port):
        shift = 8 if port == 0 else 0
        iodir = self.regs[_IODIR + port]
        pullup = self.regs[_GPPU + port]
        ipol = self.regs[_IPOL + port]
        driven = (self.inputs >> shift) & 0xFF
        floating = (self.floating >> shift) & 0xFF
        level = (driven & ~floating) | (pullup & floating)
        inputs = (level ^ ipol) & iodir
        return (inputs | (self.regs[_OLAT + port] & ~iodir)) & 0xFF

    # --- host side (model.call) ----------------------------------------------------------

    def set_inputs(self, bitmap, floating=0):
        """Levels on the 16 pins as (GPIOA << 8) | GPIOB; `floating` pins are undriven."""
        self.inputs = bitmap & 0xFFFF
        self.floating = floating & 0xFFFF
        self._save()

    def open_switches(self, bitmap):
        """Float switches: a 1 bit is an open contact (undriven pin), 0 a closed one (low)."""
        self.set_inputs(0, bitmap)

    def absent(self, flag=True):
        self.present = not flag
        self._save()

    def fail(self, flag=True):
        self.failing = bool(flag)
        self._save()

    def get(self, reg, n=1):
        """Registers by bank-0 number, as the driver left them."""
        return list(self.regs[reg:reg + n])
