# Pin keys: a config key per GPIO a profile wires, its default from the board
# (board.PINS), refused at parse when the chip or the board cannot give that pin the use:
#     SDA = pins.key("sda", pins.OUT)
#     RELAYS = pins.keys("relays", pins.HELD)
# The rules also serve `epx esp32-check` on the host, which imports this file as it is.
import board

IN = "in"  # read only
OUT = "out"  # driven after boot (I2C, UART TX, a chip select, a LED)
HELD = "held"  # driven and held through resets (relays): a level on it at boot
IRQ = "irq"  # read by its interrupts (a meter's pulses)

_MISSING = (20, 24, 28, 29, 30, 31)
_FLASH = (6, 7, 8, 9, 10, 11)  # the SPI flash on every ESP32 module
_FIRST_INPUT_ONLY = 34
# Strapping pins a held level breaks the boot with: 0 and 2 pick the boot mode, 12 the
# flash voltage. (5 and 15, SDIO timing and the boot log, do no harm to a flash boot.)
_BOOT_STRAPPING = (0, 2, 12)
# ESP32 errata 3.11: GPIO 36 and 39 are pulled down ~80 ns whenever the SAR ADC or the
# WiFi radio (modem sleep, every beacon) powers up: an interrupt each time.
_SPURIOUS = (36, 39)


def check(n, use):
    """Why GPIO n cannot serve `use` on this board: a sentence, or None if it can."""
    if not 0 <= n <= 39 or n in _MISSING:
        return "GPIO %d does not exist on the ESP32" % n
    if n in _FLASH:
        return "GPIO %d belongs to the SPI flash" % n
    why = board.RESERVED.get(n)
    if why is not None:
        return "GPIO %d is taken on %s (%s)" % (n, board.NAME, why)
    if use in (OUT, HELD) and n >= _FIRST_INPUT_ONLY:
        return "GPIO %d is input only" % n
    if use == IRQ and n in _SPURIOUS:
        return ("GPIO %d gets spurious interrupts while WiFi or the ADC runs (ESP32 errata "
                "3.11): not for a pulse input" % n)
    if use == HELD and n in _BOOT_STRAPPING:
        return "GPIO %d is a strapping pin: a level held on it at reset changes how the chip boots" % n
    return None


def parse(use):
    """A config parser: one GPIO number for `use`."""

    def one(text):
        try:
            n = int(text)
        except ValueError:
            raise ValueError("%r is not a GPIO number" % text)
        why = check(n, use)
        if why:
            raise ValueError(why)
        return n

    return one


def parse_list(use):
    """A config parser: comma-separated GPIO numbers for `use`, none twice."""
    one = parse(use)

    def many(text):
        values = tuple(one(t.strip()) for t in text.split(","))
        if len(set(values)) != len(values):
            raise ValueError("a GPIO is listed twice")
        return values

    return many


def key(name, use, default=None, doc=""):
    """The config key `name`: a GPIO for `use`, by default the board's (board.PINS)."""
    from epx import config

    return config.key(name, parse(use), board.PINS.get(name, default), doc)


def keys(name, use, default=None, doc=""):
    """The config key `name`: GPIOs for `use`, by default the board's (board.PINS)."""
    from epx import config

    return config.key(name, parse_list(use), board.PINS.get(name, default), doc)
