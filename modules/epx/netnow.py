# ESP-NOW between a battery sensor and its manager. Frames travel encrypted with the pair's
# LMK (and the PMK); each message also carries a sequence number and an HMAC-SHA256 tag
# keyed with the LMK, so a receiver refuses forgeries, and replays by the number (an
# epx.replay.Guard of 32 bits, the field's width):
#     version (1) | type (1) | sequence (4, big-endian) | payload | tag (8)
# The payload of DATA is "topic\nvalue" pairs joined by "\n"; ACK carries the number it
# acknowledges in its own sequence field and no payload.
import struct
from micropython import const
from epx import hmac

VERSION = const(2)
DATA = const(1)
ACK = const(2)
TYPES = (DATA, ACK)
HEADER = const(6)
TAG = const(8)
MAX_LEN = const(250)  # an ESP-NOW frame


class Refused(ValueError):
    pass


def key(text):
    """A 16-byte ESP-NOW key (PMK or LMK) written as 32 hex digits."""
    text = text.strip()
    try:
        k = bytes.fromhex(text)
    except ValueError:
        k = b""
    if len(k) != 16:
        raise ValueError("a key is 32 hex digits (16 bytes)")
    return k


def mac(text):
    """A MAC address as aa:bb:cc:dd:ee:ff (or 12 hex digits)."""
    try:
        m = bytes.fromhex(text.strip().replace(":", "").replace("-", ""))
    except ValueError:
        m = b""
    if len(m) != 6:
        raise ValueError("%r is not a MAC address (aa:bb:cc:dd:ee:ff)" % text)
    return m


def _tag(lmk, head_and_payload):
    return hmac.digest(lmk, head_and_payload)[:TAG]


def pack(kind, seq, payload, lmk):
    msg = struct.pack(">BBI", VERSION, kind, seq) + payload
    msg += _tag(lmk, msg)
    if len(msg) > MAX_LEN:
        raise ValueError("message of %d bytes" % len(msg))
    return msg


def unpack(msg, lmk):
    """(type, sequence, payload) of a message from the peer sharing lmk; Refused why not."""
    if not HEADER + TAG <= len(msg) <= MAX_LEN:
        raise Refused("length %d" % len(msg))
    version, kind, seq = struct.unpack_from(">BBI", msg)
    if version != VERSION:
        raise Refused("version %d" % version)
    if kind not in TYPES:
        raise Refused("type %d" % kind)
    body = memoryview(msg)[:-TAG]
    if not hmac.compare_digest(_tag(lmk, body), msg[-TAG:]):
        raise Refused("tag")
    return kind, seq, bytes(msg[HEADER:-TAG])


def encode(pairs):
    """Payload of (topic, value text) pairs."""
    return "\n".join("%s\n%s" % p for p in pairs).encode()


def decode(payload):
    parts = payload.decode().split("\n")
    if len(parts) % 2:
        raise Refused("payload")
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]


def start(channel, pmk, peer, lmk, sta=None):
    """Start ESP-NOW with peer as an encrypted peer; the WLAN STA interface must be active
    (a manager connected to its AP: channel None follows the AP)."""
    import espnow
    from epx import radio

    if sta is not None and channel is not None:
        radio.set_country()
        try:
            sta.config(channel=channel)
        except radio.ERRORS as e:
            raise OSError("the radio refused channel %d (%s): ESP-IDF's country is not %s" % (
                channel, e, radio.COUNTRY.value))
    e = espnow.ESPNow()
    e.active(True)
    e.set_pmk(pmk)
    e.add_peer(peer, lmk=lmk, channel=channel or 0, encrypt=True)
    return e
