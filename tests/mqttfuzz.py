"""Malformed MQTT 3.1.1 packets a broker could send after CONNACK, each with the error the
client must report for it, generated from a seed. The expectation comes from MQTT 3.1.1
(section 2.2: fixed header, remaining length at most four bytes; 3.x: what each packet
type may carry from server to client) and the client's documented packet bound, not from
the client's code.

One packet per connection: the client drops a connection at its first bad packet, so
only then does every packet generated reach the parser."""

import random

from mqttkit import encode_length, packet

MAX_PACKET = 1024  # the client's max_packet in the fuzz runs

# Reported error -> one letter in the device's record.
LETTER = {"ProtocolError": "P", "PacketTooLarge": "L", "ConnectionLost": "C", "Timeout": "T",
          None: "-"}

# Packet types a server never sends to a client (MQTT 3.1.1 table 2.1), with the flags
# the spec fixes for them, and the reserved types 0 and 15.
NOT_FROM_SERVER = (0x00, 0x10, 0x50, 0x62, 0x70, 0x82, 0xA2, 0xC0, 0xE0, 0xF0)
# Server-to-client types with a fixed body length (CONNACK is only valid first).
FIXED = {0x20: 2, 0x40: 2, 0x90: 3, 0xB0: 2, 0xD0: 0}


def _body(rnd, n):
    return rnd.randbytes(n)


def overlong_varint(rnd):
    # Remaining length with a continuation bit on its fourth byte (2.2.3: at most 4 bytes).
    first = rnd.choice((0x30, 0x40, 0x90, 0xD0, rnd.randrange(256)))
    return bytes([first]) + bytes(0x80 | rnd.randrange(128) for _ in range(4)) + _body(rnd, rnd.randrange(4)), "ProtocolError"


def too_large(rnd):
    # A length above the client's bound, announced in 2 to 4 bytes; the body may not follow.
    n = rnd.choice((MAX_PACKET + 1, rnd.randrange(MAX_PACKET + 1, 16384),
                    rnd.randrange(16384, 2 ** 21), rnd.randrange(2 ** 21, 2 ** 28)))
    first = rnd.choice((0x30, 0x31, 0x32, 0x40, rnd.randrange(256)))
    return bytes([first]) + encode_length(n) + _body(rnd, min(n, rnd.choice((0, 10, 200)))), "PacketTooLarge"


def wrong_type(rnd):
    first = rnd.choice(NOT_FROM_SERVER) | (rnd.randrange(16) if rnd.random() < 0.3 else 0)
    return packet(first, _body(rnd, rnd.choice((0, 1, 2, 3, 20)))), "ProtocolError"


def wrong_flags(rnd):
    # Acknowledgements carry flags 0000 (2.2.2); any other value is malformed.
    kind = rnd.choice((0x40, 0x90, 0xB0, 0xD0))
    return packet(kind | rnd.randrange(1, 16), _body(rnd, FIXED[kind])), "ProtocolError"


def wrong_length(rnd):
    kind = rnd.choice((0x20, 0x40, 0x90, 0xB0, 0xD0))
    if kind == 0x20:  # a second CONNACK, even a well-formed one
        return packet(0x20, b"\x00\x00"), "ProtocolError"
    n = rnd.choice([k for k in (0, 1, 2, 3, 4, 7, 100) if k != FIXED[kind]])
    return packet(kind, _body(rnd, n)), "ProtocolError"


def bad_publish(rnd):
    shape = rnd.randrange(5)
    if shape == 0:  # QoS 3 is malformed; QoS 2 was never subscribed to
        qos = rnd.choice((2, 3))
        topic = b"t/" + _body(rnd, rnd.randrange(10))
        body = len(topic).to_bytes(2, "big") + topic + b"\x00\x01" + _body(rnd, rnd.randrange(20))
        return packet(0x30 | qos << 1 | rnd.randrange(2), body), "ProtocolError"
    if shape == 1:  # no room for the topic length
        return packet(0x30 | rnd.randrange(2) << 1, _body(rnd, rnd.randrange(2))), "ProtocolError"
    if shape == 2:  # topic length past the end of the packet
        n = rnd.randrange(0, 40)
        claimed = rnd.randrange(n + 1, 65536)
        return packet(0x30, claimed.to_bytes(2, "big") + _body(rnd, n)), "ProtocolError"
    if shape == 3:  # QoS 1 without room for its packet id
        topic = _body(rnd, rnd.randrange(1, 20))
        extra = rnd.randrange(2)
        return packet(0x32, len(topic).to_bytes(2, "big") + topic + _body(rnd, extra)), "ProtocolError"
    # payload one past the bound
    topic = b"big"
    body = len(topic).to_bytes(2, "big") + topic
    return packet(0x30, body + _body(rnd, MAX_PACKET + 1 - len(body))), "PacketTooLarge"


def truncated(rnd):
    # A well-framed start of any packet, cut short, then the broker closes (FIN).
    whole = rnd.choice((
        packet(0x30, b"\x00\x03a/b" + _body(rnd, rnd.randrange(1, 500))),
        packet(0x40, b"\x00\x01"), packet(0x90, b"\x00\x01\x00"),
        packet(rnd.randrange(256), _body(rnd, rnd.randrange(1, 100)))))
    return whole[:rnd.randrange(1, len(whole))], "ConnectionLost"


SHAPES = (overlong_varint, too_large, wrong_type, wrong_flags, wrong_length, bad_publish, truncated)


def generate(seed, count):
    """[(packet bytes, expected error)] of `count` malformed packets, the same for a seed."""
    rnd = random.Random(seed)
    return [rnd.choice(SHAPES)(rnd) for _ in range(count)]


def expected_record(cases):
    return "".join(LETTER[e] for _, e in cases)
