# Replay protection for everything signed: each message carries a counter and is taken only
# when that counter is above the last one taken. One guard serves diagnostics, OTA requests
# (and remote config) on cmnd/<n>/OTA, another the ESP-NOW frames of a scale sensor.
# Counters are unsigned, below 2**bits (64 for what ota_key signs, 32 for ESP-NOW's frame
# field); anything else is refused, never wrapped. The last one is kept in NVS as an 8-byte
# big-endian blob `<key>64`. The i32 `<key>` of firmware before this one is read as unsigned
# 32-bit and kept up to date, saturated at 2**31-1: neither the upgrade nor a rollback to
# such a firmware reopens a counter already taken.
# What ota_key signs may jump at most 2**32 above the last counter taken (136 years of the
# senders' Unix seconds): one message from a clock in milliseconds or a script's 2**64-1
# cannot shut the signed paths for good. Its counters belong to the key they were signed
# with (one record per key, `c<key id>`): a new ota_key, given where no signature is needed
# (the setup portal, config.txt), starts afresh, and going back to an older key finds its
# counter where it was.
from micropython import const
from epx.nvram import NVRAM

NEW = const(1)
REPEAT = const(2)
_I32_MAX = const(0x7FFFFFFF)
_MAX_DIGITS = const(20)  # 2**64 - 1 has 20
JUMP_BITS = const(32)  # the commands' bound: 2**32 above the last counter taken


class Refused(ValueError):
    pass


def parse(text):
    """A counter written in decimal digits (no sign, no spaces): its value; Refused if not."""
    if not 0 < len(text) <= _MAX_DIGITS or not text.isdigit():
        raise Refused("counter %r is not a decimal number" % text[:_MAX_DIGITS + 1])
    return int(text)


def key_id(secret):
    """The NVS name of a key's counter record: `c` and 7 bytes of a hash of the key."""
    import hashlib

    h = hashlib.sha256(b"\x00epx counter\x00" + secret.encode()).digest()
    return "c" + "".join("%02x" % b for b in h[:7])


class Guard:
    """A counter in NVS namespace/key. jump_bits: how far a counter may be above the last
    one taken (None: anywhere). owner: the record of the key that signs (key_id()); the
    `<key>64` and `<key>` of older firmware then count only for the key that wrote them last
    (`<key>id`), or, before any did, for the first one to ask (adopt())."""

    def __init__(self, namespace, key, bits=64, jump_bits=None, owner=None):
        self._nv = NVRAM(namespace)
        self._key = key
        self._blob = key + "64"
        self.bits = bits
        self.jump_bits = jump_bits
        self._owner = owner

    def _legacy(self):
        blob = self._nv.get_bytes(self._blob)
        last = None if blob is None else int.from_bytes(blob, "big")
        old = self._nv.get_int(self._key)
        if old is not None:
            old &= 0xFFFFFFFF
            if last is None or old > last:
                last = old
        return last

    def adopt(self):
        """Give the older firmware's counter to this guard's key, unless a key has it."""
        if self._owner is not None and self._nv.get_bytes(self._key + "id") is None:
            self._nv.set_bytes(self._key + "id", self._owner.encode())

    def last(self):
        """The last counter taken (None before the first)."""
        if self._owner is None:
            return self._legacy()
        holder = self._nv.get_bytes(self._key + "id")
        last = self._legacy() if holder is None or holder == self._owner.encode() else None
        blob = self._nv.get_bytes(self._owner)
        if blob is not None:
            mine = int.from_bytes(blob, "big")
            if last is None or mine > last:
                last = mine
        return last

    def check(self, counter):
        """NEW when counter is above the last one taken, REPEAT when equal; Refused when
        older, too far ahead or outside 0..2**bits-1. Stores nothing."""
        if not isinstance(counter, int) or isinstance(counter, bool) or \
                not 0 <= counter < 1 << self.bits:
            raise Refused("counter %s outside 0..2**%d-1" % (counter, self.bits))
        last = self.last()
        if self.jump_bits is not None and counter - (last or 0) > 1 << self.jump_bits:
            raise Refused("counter %d is more than 2**%d above the last accepted %d (a sender's "
                          "clock wrong?)" % (counter, self.jump_bits, last or 0))
        if last is None or counter > last:
            return NEW
        if counter == last:
            return REPEAT
        raise Refused("replayed: counter %d, last accepted %d" % (counter, last))

    def store(self, counter):
        """Remember counter as the last one taken (after check() said NEW)."""
        blob = counter.to_bytes(8, "big")
        if self._owner is not None:
            self._nv.set_bytes(self._owner, blob)
            self._nv.set_bytes(self._key + "id", self._owner.encode())
        self._nv.set_bytes(self._blob, blob)
        self._nv.set_int(self._key, min(counter, _I32_MAX))

    def take(self, counter):
        """Check and store a counter that must be new, before its message acts."""
        if self.check(counter) == REPEAT:
            raise Refused("replayed: counter %d, last accepted %d" % (counter, counter))
        self.store(counter)


def commands():
    """The guard of everything signed with ota_key: diagnostics, OTA, remote config."""
    from epx.ota import OTA_KEY

    return Guard("epx", "otactr", jump_bits=JUMP_BITS,
                 owner=key_id(OTA_KEY.value) if OTA_KEY.value else None)
