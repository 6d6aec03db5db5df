# SSD1306 OLED controller on I2C: control bytes (Co, D/C), the command set a driver uses
# (addressing modes, column/page windows, segment and COM remap, on/off, invert), and its
# GDDRAM. The host reads back what the panel shows: pixel rows, or the text on it,
# recognised against MicroPython's own 8x8 font (framebuf.text).
import framebuf
from errno import ETIMEDOUT
from sim.models import I2CModel

# Commands followed by argument bytes, and how many.
_ARGS = {0x20: 1, 0x21: 2, 0x22: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0x81: 1, 0x8D: 1,
         0xA3: 2, 0xA8: 1, 0xAD: 1, 0xD3: 1, 0xD5: 1, 0xD8: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1}
_HORIZONTAL = const(0)
_VERTICAL = const(1)
_PAGE = const(2)

_glyphs = None


def _font():
    # Each character's 8 column bytes as framebuf draws them: the key to read text back.
    global _glyphs
    if _glyphs is None:
        _glyphs = {}
        buf = bytearray(8)
        fb = framebuf.FrameBuffer(buf, 8, 8, framebuf.MONO_VLSB)
        for c in range(33, 127):
            fb.fill(0)
            fb.text(chr(c), 0, 0, 1)
            _glyphs.setdefault(bytes(buf), chr(c))
    return _glyphs


class SSD1306(I2CModel):
    def __init__(self, width=128, height=64, absent=False, failing=False, **args):
        super().__init__(**args)
        self.width = width
        self.height = height
        self.pages = height // 8
        self.ram = bytearray(width * self.pages)
        self.present = not absent
        self.failing = failing
        self.on = False
        self.inverted = False
        self.entire_on = False
        self.seg_remap = False
        self.com_remap = False
        self.contrast = 0x7F
        self.charge_pump = False
        self.mode = _PAGE  # the reset default
        self.col0, self.col1, self.page0, self.page1 = 0, width - 1, 0, self.pages - 1
        self.col, self.page = 0, 0
        self.frames = 0  # data transactions received
        self._cmd = None  # a command waiting for its arguments
        self._args = bytearray()

    def restore(self, state):
        self.present = not state.get("absent", not self.present)
        self.failing = state.get("failing", self.failing)

    # --- the bus ---------------------------------------------------------------------------

    def write(self, buf):
        if self.failing:
            raise OSError(ETIMEDOUT)
        i = 0
        n = len(buf)
        while i < n:
            control = buf[i]
            i += 1
            last = not control & 0x80  # Co = 0: the rest of the transaction is data bytes
            data = control & 0x40
            chunk = buf[i:] if last else buf[i:i + 1]
            i += len(chunk)
            if data:
                self._data(chunk)
                self.frames += 1
            else:
                for b in chunk:
                    self._command(b)

    def read(self, n):
        if self.failing:
            raise OSError(ETIMEDOUT)
        # Status byte: bit 6 = display off.
        return bytes([0 if self.on else 0x40] + [0] * (n - 1))

    def _command(self, b):
        if self._cmd is not None:
            self._args.append(b)
            if len(self._args) == _ARGS[self._cmd]:
                cmd, self._cmd = self._cmd, None
                self._apply(cmd, self._args)
            return
        if b in _ARGS:
            self._cmd = b
            self._args = bytearray()
            return
        self._apply(b, b"")

    def _apply(self, cmd, a):
        if cmd == 0x20:
            self.mode = a[0] & 3
        elif cmd == 0x21:
            self.col0, self.col1 = a[0] & 0x7F, a[1] & 0x7F
            self.col = self.col0
        elif cmd == 0x22:
            self.page0, self.page1 = a[0] & 7, a[1] & 7
            self.page = self.page0
        elif cmd == 0x81:
            self.contrast = a[0]
        elif cmd == 0x8D:
            self.charge_pump = bool(a[0] & 0x04)
        elif cmd in (0xAE, 0xAF):
            self.on = cmd == 0xAF
        elif cmd in (0xA0, 0xA1):
            self.seg_remap = cmd == 0xA1
        elif cmd in (0xC0, 0xC8):
            self.com_remap = cmd == 0xC8
        elif cmd in (0xA6, 0xA7):
            self.inverted = cmd == 0xA7
        elif cmd in (0xA4, 0xA5):
            self.entire_on = cmd == 0xA5
        elif 0xB0 <= cmd <= 0xB7:
            self.page = cmd & 7
        elif cmd <= 0x0F:
            self.col = (self.col & 0xF0) | cmd
        elif cmd <= 0x1F:
            self.col = (self.col & 0x0F) | ((cmd & 0x0F) << 4)

    def _data(self, chunk):
        w = self.width
        for b in chunk:
            if self.page < self.pages and self.col < w:
                self.ram[self.page * w + self.col] = b
            if self.mode == _HORIZONTAL:
                if self.col >= self.col1:
                    self.col = self.col0
                    self.page = self.page0 if self.page >= self.page1 else self.page + 1
                else:
                    self.col += 1
            elif self.mode == _VERTICAL:
                if self.page >= self.page1:
                    self.page = self.page0
                    self.col = self.col0 if self.col >= self.col1 else self.col + 1
                else:
                    self.page += 1
            elif self.col < w - 1:
                self.col += 1

    # --- what the panel shows ----------------------------------------------------------------

    def pixel(self, x, y):
        """1 if the pixel at (x, y) of the upright panel is lit."""
        if not (self.on and self.charge_pump):
            return 0
        if self.entire_on:
            return 1
        col = x if self.seg_remap else self.width - 1 - x
        row = y if self.com_remap else self.height - 1 - y
        lit = (self.ram[(row >> 3) * self.width + col] >> (row & 7)) & 1
        return lit ^ self.inverted

    def _panel(self):
        # The upright image as framebuf MONO_VLSB bytes (identical to RAM for a driver
        # that remaps segments and COMs, as upright modules need).
        if self.on and self.charge_pump and self.seg_remap and self.com_remap \
                and not self.inverted and not self.entire_on:
            return self.ram
        out = bytearray(len(self.ram))
        fb = framebuf.FrameBuffer(out, self.width, self.height, framebuf.MONO_VLSB)
        for y in range(self.height):
            for x in range(self.width):
                if self.pixel(x, y):
                    fb.pixel(x, y, 1)
        return out

    # --- host side (model.call) ----------------------------------------------------------

    def rows(self):
        """The panel as strings, "#" for a lit pixel, one per pixel row."""
        ram = self._panel()
        w = self.width
        return ["".join("#" if (ram[(y >> 3) * w + x] >> (y & 7)) & 1 else "." for x in range(w))
                for y in range(self.height)]

    def text(self):
        """Text lines on the panel, top to bottom, found at any pixel position."""
        found = {}
        for y in range(self.height - 7):
            line = self._line(y)
            if line:
                found[y] = line
        # A line also matches a few glyphs one row off: keep the best row of each band.
        lines = []
        for y in sorted(found, key=lambda y: -len(found[y].replace(" ", ""))):
            if all(abs(y - other) >= 8 for other, _ in lines):
                lines.append((y, found[y]))
        return [text for _, text in sorted(lines)]

    def _line(self, y):
        glyphs = _font()
        ram = self._panel()
        w = self.width
        page, shift = y >> 3, y & 7
        cols = bytearray(w)
        for x in range(w):
            v = ram[page * w + x] >> shift
            if shift and page + 1 < self.pages:
                v |= ram[(page + 1) * w + x] << (8 - shift)
            cols[x] = v & 0xFF
        line = []
        last = None
        x = 0
        while x <= w - 8:
            c = glyphs.get(bytes(cols[x:x + 8]))
            if c is None:
                x += 1
                continue
            if last is not None:
                line.append(" " * ((x - last) // 8 - 1))
            line.append(c)
            last = x
            x += 8
        return "".join(line)

    def absent(self, flag=True):
        self.present = not flag
        self.save({"absent": flag, "failing": self.failing})

    def fail(self, flag=True):
        self.failing = bool(flag)
        self.save({"absent": not self.present, "failing": self.failing})
