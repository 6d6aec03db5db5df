# Replay protection for everything signed: each message carries a counter and is taken only
# when that counter is above the last one taken. One guard serves diagnostics, OTA requests
# (and remote config) on cmnd/<n>/OTA, another the ESP-NOW frames of a scale sensor.
# Counters are unsigned, below 2**bits (64 for what ota_key signs, 32 for ESP-NOW's frame
# field); anything else is refused, never wrapped. The last one is kept in NVS as an 8-byte
# big-endian blob `<key>64`. The i32 `<key>` of firmware before this one is read as unsigned
# 32-bit and kept up to date, saturated at 2**31-1: neither the upgrade nor a rollback to
# such a firmware reopens a counter already taken.
from micropython import const
from epx.nvram import NVRAM

NEW = const(1)
REPEAT = const(2)
_I32_MAX = const(0x7FFFFFFF)
_MAX_DIGITS = const(20)  # 2**64 - 1 has 20


class Refused(ValueError):
    pass


def parse(text):
    """A counter written in decimal digits (no sign, no spaces): its value; Refused if not."""
    if not 0 < len(text) <= _MAX_DIGITS or not text.isdigit():
        raise Refused("counter %r is not a decimal number" % text[:_MAX_DIGITS + 1])
    return int(text)


class Guard:
    def __init__(self, namespace, key, bits=64):
        self._nv = NVRAM(namespace)
        self._key = key
        self._blob = key + "64"
        self.bits = bits

    def last(self):
        """The last counter taken (None before the first)."""
        blob = self._nv.get_bytes(self._blob)
        last = None if blob is None else int.from_bytes(blob, "big")
        old = self._nv.get_int(self._key)
        if old is not None:
            old &= 0xFFFFFFFF
            if last is None or old > last:
                last = old
        return last

    def check(self, counter):
        """NEW when counter is above the last one taken, REPEAT when equal; Refused when
        older or outside 0..2**bits-1. Stores nothing."""
        if not isinstance(counter, int) or isinstance(counter, bool) or \
                not 0 <= counter < 1 << self.bits:
            raise Refused("counter %s outside 0..2**%d-1" % (counter, self.bits))
        last = self.last()
        if last is None or counter > last:
            return NEW
        if counter == last:
            return REPEAT
        raise Refused("replayed: counter %d, last accepted %d" % (counter, last))

    def store(self, counter):
        """Remember counter as the last one taken (after check() said NEW)."""
        self._nv.set_bytes(self._blob, counter.to_bytes(8, "big"))
        self._nv.set_int(self._key, min(counter, _I32_MAX))

    def take(self, counter):
        """Check and store a counter that must be new, before its message acts."""
        if self.check(counter) == REPEAT:
            raise Refused("replayed: counter %d, last accepted %d" % (counter, counter))
        self.store(counter)


def commands():
    """The guard of everything signed with ota_key: diagnostics, OTA, remote config."""
    return Guard("epx", "otactr")
