# SSD1306 OLED on I2C, drawn through MicroPython's framebuf. The display is optional
# hardware: show() tolerates it being absent or failing and initialises it again later.
import framebuf
from micropython import const
from time import ticks_add, ticks_diff, ticks_ms

_CMD = const(0x00)  # control byte: a stream of commands follows
_DATA = b"\x40"  # control byte: a stream of GDDRAM data follows
_CHUNK = const(32)


class SSD1306(framebuf.FrameBuffer):
    def __init__(self, i2c, width=128, height=64, addr=0x3C, retry_ms=10000):
        self.i2c = i2c
        self.addr = addr
        self.width = width
        self.height = height
        self.retry_ms = retry_ms
        pages = height // 8
        frame = bytearray(width * pages)
        super().__init__(frame, width, height, framebuf.MONO_VLSB)
        # The frame in short I2C transactions (32 bytes: 0.75 ms at 400 kHz): pin IRQ
        # handlers are scheduled, they run between transactions, so a pulse counter never
        # waits longer than that.
        frame = memoryview(frame)
        self._chunks = tuple((_DATA, frame[i:i + _CHUNK]) for i in range(0, len(frame), _CHUNK))
        self._init_cmds = bytes((
            _CMD,
            0xAE,  # display off
            0x20, 0x00,  # horizontal addressing
            0x40,  # start line 0
            0xA1,  # column 127 is SEG0 (upright)
            0xA8, height - 1,  # multiplex ratio
            0xC8,  # scan COM[N-1] to COM0 (upright)
            0xD3, 0x00,  # no display offset
            0xDA, 0x02 if width > 2 * height else 0x12,  # COM pins
            0xD5, 0x80,  # clock divide, oscillator
            0xD9, 0xF1,  # precharge (internal VCC)
            0xDB, 0x30,  # VCOMH deselect level
            0x81, 0xFF,  # contrast
            0xA4,  # display follows RAM
            0xA6,  # not inverted
            0x8D, 0x14,  # charge pump on
            0xAF,  # display on
        ))
        self._window = bytes((_CMD, 0x21, 0, width - 1, 0x22, 0, pages - 1))
        self.ok = False
        self._retry_at = ticks_ms()

    def due(self):
        """True when show() would try the display: it works, or it is time to retry."""
        return self.ok or ticks_diff(ticks_ms(), self._retry_at) >= 0

    def show(self):
        """Send the frame. False while the display is absent or failing (retried later)."""
        i2c, addr = self.i2c, self.addr
        try:
            if not self.ok:
                if not self.due():
                    return False
                i2c.writeto(addr, self._init_cmds)
                self.ok = True
            i2c.writeto(addr, self._window)
            for chunk in self._chunks:
                i2c.writevto(addr, chunk)
            return True
        except OSError:
            self.ok = False
            self._retry_at = ticks_add(ticks_ms(), self.retry_ms)
            return False

    def power(self, on):
        """Panel on or off (the frame is kept)."""
        try:
            self.i2c.writeto(self.addr, b"\x00\xaf" if on else b"\x00\xae")
        except OSError:
            self.ok = False
