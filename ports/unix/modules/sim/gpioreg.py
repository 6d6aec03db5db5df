# machine.mem32 of the simulated ESP32: the GPIO registers (OUT, W1TS, W1TC, IN of both
# banks) act on the simulated pins, so register bit-banging (viper code in modules/third)
# runs unchanged on the host; other addresses are not mapped (the host has no ESP32 memory).
import machine

_BASE = const(0x3FF44000)
_OUT = const(0x04)
_OUT_W1TS = const(0x08)
_OUT_W1TC = const(0x0C)
_OUT1 = const(0x10)
_OUT1_W1TS = const(0x14)
_OUT1_W1TC = const(0x18)
_IN = const(0x3C)
_IN1 = const(0x40)

_bit_pin = {1 << i: i for i in range(32)}


def _bank(offset):
    return 32 if offset in (_OUT1, _OUT1_W1TS, _OUT1_W1TC, _IN1) else 0


def _pins(mask, first):
    pin = _bit_pin.get(mask)
    if pin is not None:  # one bit: the common case of a bit-banged line
        yield first + pin
        return
    for i in range(32):
        if mask >> i & 1:
            yield first + i


def _write(first, mask, value):
    for n in _pins(mask, first):
        if n < 40 and n not in machine._MISSING_GPIOS:
            g = machine._gpio(n)
            g.out = value
            g.update()


class Mem32:
    def __getitem__(self, addr):
        offset = addr - _BASE
        if offset in (_IN, _IN1, _OUT, _OUT1):
            first = _bank(offset)
            read = offset in (_IN, _IN1)
            value = 0
            for n, g in machine._gpios.items():
                if first <= n < first + 32 and (g.read() if read else g.out):
                    value |= 1 << (n - first)
            return value
        raise OSError("mem32[0x%08x]: not a simulated register" % addr)

    def __setitem__(self, addr, value):
        offset = addr - _BASE
        if offset in (_OUT_W1TS, _OUT1_W1TS):
            _write(_bank(offset), value, 1)
        elif offset in (_OUT_W1TC, _OUT1_W1TC):
            _write(_bank(offset), value, 0)
        elif offset in (_OUT, _OUT1):
            first = _bank(offset)
            for i in range(32 if first == 0 else 8):
                if first + i in machine._gpios:
                    g = machine._gpios[first + i]
                    if g.out != (value >> i & 1):
                        g.out = value >> i & 1
                        g.update()
        else:
            raise OSError("mem32[0x%08x]: not a simulated register" % addr)


mem32 = Mem32()
