# The MCP23017 and SSD1306 drivers against their device models on the simulated I2C bus.
import _simclock
import framebuf
from machine import I2C, Pin
from sim import models

from mcp23017 import MCP23017
from ssd1306 import SSD1306
from fwunit import eq, raises


def bus():
    return I2C(0, scl=Pin(22), sda=Pin(21))


def test_mcp_init_registers():
    m = models.attach("i2c0", "MCP23017", 0x20)
    m.regs[0x02] = 0x0F  # inverted polarity left over from somebody else
    chip = MCP23017(bus())
    chip.init()
    eq(m.get(0x00, 2), [0xFF, 0xFF], "IODIR")
    eq(m.get(0x02, 2), [0, 0], "IPOL")
    eq(m.get(0x0C, 2), [0xFF, 0xFF], "GPPU")
    eq(m.get(0x0A), [0], "IOCON")


def test_mcp_bitmap_is_a_then_b():
    m = models.attach("i2c0", "MCP23017", 0x20)
    chip = MCP23017(bus())
    chip.init()
    m.set_inputs(0x12F0)
    eq(chip.read(), 0x12F0)
    m.open_switches(0xFFFF & ~0b101)  # switches 0 and 2 closed (wet)
    eq(chip.read(), 0xFFFA)


def test_mcp_pullups_make_open_switches_read_1():
    m = models.attach("i2c0", "MCP23017", 0x20)
    chip = MCP23017(bus())
    m.open_switches(0xFFFF)
    eq(chip.read(), 0x0000, "floating without pull-ups (before init)")
    chip.init()
    eq(chip.read(), 0xFFFF)


def test_mcp_from_bank1():
    # A chip left in BANK=1 (IOCON at 0x05) by other firmware: init brings it to bank 0.
    m = models.attach("i2c0", "MCP23017", 0x20)
    m.regs[0x0A] = m.regs[0x0B] = 0x80
    chip = MCP23017(bus())
    chip.init()
    eq(m.get(0x0A), [0], "IOCON")
    m.set_inputs(0xA55A)
    eq(chip.read(), 0xA55A)


def test_mcp_absent_and_failing():
    m = models.attach("i2c0", "MCP23017", 0x20, args={"absent": True})
    chip = MCP23017(bus())
    eq(raises(OSError, chip.init).errno, 19, "ENODEV")
    m.absent(False)
    chip.init()
    m.fail()
    raises(OSError, chip.read)
    m.fail(False)
    eq(chip.read(), 0xFFFF)


def test_ssd1306_renders_text():
    d = models.attach("i2c0", "SSD1306", 0x3C)
    oled = SSD1306(bus())
    oled.fill(0)
    oled.text("60% + 12L", 0, 8)
    oled.text("no net", 5, 21)
    eq(oled.show(), True)
    eq(d.on, True, "display on")
    eq(d.text(), ["60% + 12L", "no net"])


def test_ssd1306_pixels_match_framebuf():
    d = models.attach("i2c0", "SSD1306", 0x3C)
    oled = SSD1306(bus())
    ref = bytearray(128 * 8)
    fb = framebuf.FrameBuffer(ref, 128, 64, framebuf.MONO_VLSB)
    for f in (oled, fb):
        f.fill(0)
        f.rect(3, 5, 100, 20, 1)
        f.line(0, 63, 127, 0, 1)
    oled.show()
    rows = d.rows()
    for y in range(64):
        eq(rows[y], "".join("#" if fb.pixel(x, y) else "." for x in range(128)), "row %d" % y)


def test_ssd1306_absent_then_attached():
    d = models.attach("i2c0", "SSD1306", 0x3C, args={"absent": True})
    oled = SSD1306(bus(), retry_ms=5000)
    oled.text("hello", 0, 0)
    eq(oled.show(), False)
    d.absent(False)
    eq(oled.due(), False)
    eq(oled.show(), False, "not retried before retry_ms")
    _simclock.advance(5000)
    eq(oled.due(), True)
    eq(oled.show(), True)
    eq(d.text(), ["hello"])


def test_ssd1306_failure_mid_run_is_retried():
    d = models.attach("i2c0", "SSD1306", 0x3C)
    oled = SSD1306(bus(), retry_ms=1000)
    oled.text("one", 0, 0)
    eq(oled.show(), True)
    d.fail()
    oled.fill(0)
    oled.text("two", 0, 0)
    eq(oled.show(), False)
    d.fail(False)
    d.on = False  # the panel lost power meanwhile: the driver initialises it again
    _simclock.advance(1000)
    eq(oled.show(), True)
    eq(d.on, True)
    eq(d.text(), ["two"])
