# Output states that survive every reboot: RTC slow memory keeps them through soft,
# watchdog, panic and OTA resets (written on every change, no flash wear); NVS keeps them
# through power cycles (written only when a value changes).
#
# RTC memory is one blob for the whole firmware: its first 4 bytes are epx.app's (boot
# loop counter), then each user owns a tagged record (8-byte tag, 2-byte length, payload,
# CRC32 of the record); a write leaves the others' records and epx.app's bytes alone.
import binascii
import struct
from machine import PWRON_RESET, RTC, reset_cause

_APP = const(4)  # epx.app's bytes
_HEAD = const(10)  # tag (8) + payload length (2)
_CRC = const(4)


def _records(blob):
    """{tag: payload} of the valid records in an RTC memory blob."""
    found = {}
    at = _APP
    while at + _HEAD + _CRC <= len(blob):
        tag, n = struct.unpack_from("<8sH", blob, at)
        end = at + _HEAD + n
        if end + _CRC > len(blob):
            break
        crc = struct.unpack_from("<I", blob, end)[0]
        if binascii.crc32(blob[at:end]) != crc:
            break  # garbage (power-on contents): nothing after it can be trusted
        found[tag] = blob[at + _HEAD:end]
        at = end + _CRC
    return found


# After a power-on RTC memory holds noise (or a stale past) until the first write.
_stale = reset_cause() == PWRON_RESET


def rtc_read(tag):
    """The payload of record `tag`, None when absent or not written since power-on."""
    if _stale:
        return None
    return _records(RTC().memory()).get(_tag(tag))


def rtc_write(tag, payload):
    global _stale
    mem = RTC().memory()
    records = {} if _stale else _records(mem)
    _stale = False
    records[_tag(tag)] = bytes(payload)
    blob = bytearray(mem[:_APP])
    blob += bytes(_APP - len(blob))
    for t, p in records.items():
        record = struct.pack("<8sH", t, len(p)) + p
        blob += record + struct.pack("<I", binascii.crc32(record))
    RTC().memory(blob)


def _tag(tag):
    return (tag.encode() + b"\0" * 8)[:8]


class Kept:
    """n int32 values in RTC record `tag` and NVS `nvram` (keys prefix + index)."""

    def __init__(self, nvram, tag, n, prefix=""):
        self.nvram = nvram
        self.tag = tag
        self.prefix = prefix
        self.values = [0] * n
        self.from_rtc = False

    def load(self, default=0):
        """Values after this boot's reset: RTC's, else NVS's (else default)."""
        n = len(self.values)
        payload = rtc_read(self.tag)
        if payload is not None and len(payload) == 4 * n:
            self.values[:] = struct.unpack("<%di" % n, payload)
            self.from_rtc = True
            for i in range(n):  # a reset between the RTC and the NVS write: NVS catches up
                self.nvram.set_int(self.prefix + str(i), self.values[i])
        else:
            for i in range(n):
                self.values[i] = self.nvram.get_int(self.prefix + str(i), default)
        return self.values

    def store(self):
        """Keep values in RTC memory."""
        rtc_write(self.tag, struct.pack("<%di" % len(self.values), *self.values))

    def set(self, i, value, durable=True):
        """Keep values[i] = value in RTC memory, and in NVS when durable."""
        self.values[i] = value
        self.store()
        if durable:
            self.nvram.set_int(self.prefix + str(i), value)
