# The ESP32's GPIO registers, for drivers that bit-bang through machine.mem32: where a pin
# is set, cleared and read, and its bit. GPIO 0-31 live in the first bank, 32-39 in the
# second.
_GPIO_OUT_W1TS = const(0x3FF44008)
_GPIO_OUT_W1TC = const(0x3FF4400C)
_GPIO_OUT1_W1TS = const(0x3FF44014)
_GPIO_OUT1_W1TC = const(0x3FF44018)
_GPIO_IN = const(0x3FF4403C)
_GPIO_IN1 = const(0x3FF44040)


def set_reg(pin):
    return _GPIO_OUT_W1TS if pin < 32 else _GPIO_OUT1_W1TS


def clr_reg(pin):
    return _GPIO_OUT_W1TC if pin < 32 else _GPIO_OUT1_W1TC


def in_reg(pin):
    return _GPIO_IN if pin < 32 else _GPIO_IN1


def mask(pin):
    return 1 << (pin & 31)
