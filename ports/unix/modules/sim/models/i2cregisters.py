# A generic I2C register file: the first byte written sets the register pointer, further
# bytes are written from there; reads continue from the pointer. Both auto-increment.
from sim.models import I2CModel


class I2CRegisters(I2CModel):
    def __init__(self, size=256, regs=None, **args):
        super().__init__(**args)
        self.regs = bytearray(size)
        self.pointer = 0
        self.writes = 0
        if regs:
            for reg, value in regs.items():
                self.set(int(reg), value)

    def write(self, buf):
        if buf:
            self.pointer = buf[0]
            for b in buf[1:]:
                self.regs[self.pointer % len(self.regs)] = b
                self.pointer += 1
            self.writes += 1

    def read(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.regs[self.pointer % len(self.regs)]
            self.pointer += 1
        return out

    # host side (model.call)
    def set(self, reg, value):
        """value: an int (one byte) or a list of bytes from reg on."""
        if isinstance(value, int):
            value = [value]
        for i, b in enumerate(value):
            self.regs[reg + i] = b

    def get(self, reg, n=1):
        return list(self.regs[reg:reg + n])

    def fail(self, flag=True):
        self.stuck = flag
