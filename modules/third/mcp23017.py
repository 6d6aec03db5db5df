# MCP23017 16-bit I/O expander (I2C) as 16 inputs with pull-ups, read as one bitmap.
from micropython import const

# Register addresses with IOCON.BANK = 0 (A and B registers paired).
_IODIR = const(0x00)
_IPOL = const(0x02)
_IOCON = const(0x0A)
_IOCON_BANK1 = const(0x05)  # GPINTENB in bank 0
_GPPU = const(0x0C)
_GPIO = const(0x12)

_ALL = b"\xff\xff"


class MCP23017:
    def __init__(self, i2c, addr=0x20):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(2)

    def init(self):
        """Every pin an input with pull-up, not inverted. Raises OSError if the chip is absent."""
        # A chip left in BANK=1 has IOCON at 0x05; in bank 0 that is GPINTENB, whose
        # reset value is 0. Writing 0 to both selects bank 0 from either mode.
        i2c, addr = self._i2c, self._addr
        i2c.writeto_mem(addr, _IOCON_BANK1, b"\x00")
        i2c.writeto_mem(addr, _IOCON, b"\x00")
        i2c.writeto_mem(addr, _IODIR, _ALL)
        i2c.writeto_mem(addr, _IPOL, b"\x00\x00")
        i2c.writeto_mem(addr, _GPPU, _ALL)

    def read(self):
        """Input levels as (GPIOA << 8) | GPIOB. Raises OSError on a bus error."""
        buf = self._buf
        self._i2c.readfrom_mem_into(self._addr, _GPIO, buf)
        return (buf[0] << 8) | buf[1]
