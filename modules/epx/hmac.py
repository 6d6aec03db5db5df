# HMAC-SHA256 (RFC 2104) on hashlib.sha256, which has no copy(): the padded key blocks are
# kept, and each digest hashes them afresh.
import hashlib
from micropython import const

_BLOCK = const(64)


class HMAC:
    """HMAC-SHA256 with key: update(data) as often as needed, then digest()."""

    def __init__(self, key, msg=None):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        self._outer = bytes(b ^ 0x5C for b in key) + b"\x5c" * (_BLOCK - len(key))
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + b"\x36" * (_BLOCK - len(key)))
        if msg is not None:
            self._inner.update(msg)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        """The MAC (32 bytes); the object is spent afterwards."""
        return hashlib.sha256(self._outer + self._inner.digest()).digest()

    def hexdigest(self):
        return "".join("%02x" % b for b in self.digest())


def digest(key, msg):
    return HMAC(key, msg).digest()


def compare_digest(a, b):
    """Equal, in a time that does not depend on where a and b differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
