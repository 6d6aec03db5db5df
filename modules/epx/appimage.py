# ESP32 app images, checked as they stream in: the layout esptool writes and ESP-IDF's
# esp_image_verify reads (header, segments, XOR checksum, appended SHA-256), the chip id and
# the app descriptor (esp_app_desc_t) at the start of the first segment's data. The appended
# SHA-256 (`esptool image-info`'s validation hash) covers every byte before it, so once it
# matches it identifies the whole image: epx.ota's signed request names the image by it.
import hashlib
import micropython
import struct
from micropython import const

MAGIC = const(0xE9)
DESC_MAGIC = const(0xABCD5432)
CHIP_ESP32 = const(0)
_HEADER = const(24)  # esp_image_header_t: 8 common + 16 extended bytes
_SEGMENT = const(8)  # esp_image_segment_header_t: load address, length
_DESC = const(80)  # esp_app_desc_t up to and including project_name
_DIGEST = const(32)
_MAX_SEGMENTS = const(16)
_MMU_PAGE = const(0x10000)
_CHECKSUM_SEED = const(0xEF)
_NOT_LOADED = const(0x10000000)  # below: never loaded (ESP-IDF's should_load)

# What each consumed byte is.
_S_HEADER = const(0)
_S_SEGHDR = const(1)
_S_DATA = const(2)
_S_PAD = const(3)
_S_CHECKSUM = const(4)
_S_DIGEST = const(5)
_S_END = const(6)

# ESP32 address ranges a segment may load to: (start, end, mapped from flash).
_REGIONS = (
    (0x3F400000, 0x3F800000, True),  # DROM
    (0x400C2000, 0x40C00000, True),  # IROM
    (0x3FFAE000, 0x40000000, False),  # DRAM
    (0x40070000, 0x400A0000, False),  # IRAM
    (0x3FF80000, 0x3FF82000, False),  # RTC DRAM
    (0x400C0000, 0x400C2000, False),  # RTC IRAM
    (0x50000000, 0x50002000, False),  # RTC slow memory
)


@micropython.viper
def _xor(buf: ptr8, start: int, end: int, acc: int) -> int:
    # Aligned 32-bit words (the ESP32 faults on unaligned ones), folded to a byte at the end.
    while start < end and (uint(buf) + start) & 3:
        acc ^= buf[start]
        start += 1
    words = ptr32(uint(buf) + start)
    n = (end - start) >> 2
    w = 0
    i = 0
    while i < n:
        w ^= words[i]
        i += 1
    start += n << 2
    while start < end:
        acc ^= buf[start]
        start += 1
    w ^= w >> 16
    w ^= w >> 8
    return (acc ^ w) & 0xFF


def _text(raw):
    end = raw.find(b"\0")
    return bytes(raw if end < 0 else raw[:end]).decode()


class Check:
    """Feed an image's bytes in order with feed(); finish() says whether it is whole and
    valid and returns (version, project_name) from its app descriptor; `digest` is then its
    appended SHA-256, checked. Errors are ValueError naming the fault; header, chip and
    descriptor faults show in the first 112 bytes."""

    def __init__(self):
        self.stage = bytearray(_DESC)  # header, segment header or descriptor being collected
        self.stage_mv = memoryview(self.stage)
        self.digest = bytearray(_DIGEST)
        self.sha = hashlib.sha256()
        self.pos = 0  # file offset of the next byte
        self.state = _S_HEADER
        self.need = _HEADER  # bytes still to come in this state
        self.fill = 0
        self.segments = 0
        self.segment = 0
        self.load = 0  # load address of the current segment
        self.seg_start = 0  # file offset of the current segment's data
        self.checksum = _CHECKSUM_SEED
        self.desc = None

    def feed(self, buf):
        mv = memoryview(buf)
        n = len(mv)
        i = 0
        while i < n:
            state = self.state
            take = min(self.need, n - i)
            if state == _S_DATA:
                self.checksum = _xor(mv, i, i + take, self.checksum)
                if self.segment == 0 and self.pos - self.seg_start < _DESC:
                    d = self.pos - self.seg_start
                    k = min(take, _DESC - d)
                    self.stage_mv[d:d + k] = mv[i:i + k]
                    if d + k == _DESC:
                        self._descriptor()
            elif state in (_S_HEADER, _S_SEGHDR, _S_CHECKSUM):
                self.stage_mv[self.fill:self.fill + take] = mv[i:i + take]
                self.fill += take
            elif state == _S_DIGEST:
                f = _DIGEST - self.need
                self.digest[f:f + take] = mv[i:i + take]
            elif state == _S_END:
                raise ValueError("image: data after the end of the image")
            if state != _S_DIGEST:
                self.sha.update(mv[i:i + take])
            i += take
            self.pos += take
            self.need -= take
            if not self.need:
                self._next()

    def _next(self):
        state, s = self.state, self.stage
        self.fill = 0
        if state == _S_HEADER:
            if s[0] != MAGIC:
                raise ValueError("image: magic byte 0x%02x, not 0xe9" % s[0])
            self.segments = s[1]
            if not 0 < self.segments <= _MAX_SEGMENTS:
                raise ValueError("image: %d segments" % self.segments)
            chip = s[12] | s[13] << 8
            if chip != CHIP_ESP32:
                raise ValueError("image: chip id %d, not esp32" % chip)
            if s[23] != 1:
                raise ValueError("image: no appended SHA-256")
            self._segment_header()
        elif state == _S_SEGHDR:
            self.load, length = struct.unpack_from("<II", s)
            self._check_segment(length)
            self.seg_start = self.pos
            self.state, self.need = _S_DATA, length
            if not length:
                self._segment_done()
        elif state == _S_DATA:
            self._segment_done()
        elif state == _S_PAD:
            self.state, self.need = _S_CHECKSUM, 1
        elif state == _S_CHECKSUM:
            if s[0] != self.checksum:
                raise ValueError("image: checksum 0x%02x, computed 0x%02x" % (s[0], self.checksum))
            self.state, self.need = _S_DIGEST, _DIGEST
        elif state == _S_DIGEST:
            if self.sha.digest() != self.digest:
                raise ValueError("image: appended SHA-256 does not match")
            self.state, self.need = _S_END, 1 << 30

    def _segment_header(self):
        self.state, self.need = _S_SEGHDR, _SEGMENT

    def _segment_done(self):
        if self.segment == 0 and self.desc is None:
            raise ValueError("image: first segment too short for an app descriptor")
        self.segment += 1
        if self.segment < self.segments:
            self._segment_header()
        else:
            pad = 15 - self.pos % 16
            self.state, self.need = (_S_PAD, pad) if pad else (_S_CHECKSUM, 1)

    def _check_segment(self, length):
        load, n = self.load, self.segment
        if length % 4:
            raise ValueError("image: segment %d length %d is not a multiple of 4" % (n, length))
        if load < _NOT_LOADED:
            return  # padding, as esptool writes to align the next mapped segment
        for start, end, mapped in _REGIONS:
            if start <= load < end:
                if load + length > end:
                    raise ValueError("image: segment %d at 0x%08x runs past its region" % (n, load))
                if mapped and load % _MMU_PAGE != (self.pos % _MMU_PAGE):
                    raise ValueError("image: segment %d at 0x%08x not aligned with its offset" % (n, load))
                return
        raise ValueError("image: segment %d at 0x%08x outside the ESP32 memory map" % (n, load))

    def _descriptor(self):
        s = self.stage
        magic = struct.unpack_from("<I", s)[0]
        if magic != DESC_MAGIC:
            raise ValueError("image: no app descriptor (magic 0x%08x)" % magic)
        try:
            self.desc = (_text(s[16:48]), _text(s[48:80]), struct.unpack_from("<I", s, 4)[0])
        except UnicodeError:
            raise ValueError("image: app descriptor version is not text")

    def finish(self):
        """(version, project_name, secure_version) of a whole, valid image; ValueError
        otherwise."""
        if self.state != _S_END:
            raise ValueError("image: truncated at %d bytes" % self.pos)
        return self.desc
