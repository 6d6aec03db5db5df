# MQTT 3.1.1 wire format: packet types, and the encoders the client writes into its
# preallocated transmit buffer. Each encoder returns the end index. The client keeps its
# own copies of the packet types it needs: a const() is inlined only within its module.

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_UNSUBSCRIBE = const(0xA2)
_UNSUBACK = const(0xB0)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

_DUP = const(0x08)
_RETAIN = const(0x01)


def as_bytes(s):
    return s.encode() if isinstance(s, str) else s


def put_length(buf, i, n):
    while True:
        b = n & 0x7F
        n >>= 7
        buf[i] = b | 0x80 if n else b
        i += 1
        if not n:
            return i


def length_size(n):
    return 1 if n < 0x80 else 2 if n < 0x4000 else 3 if n < 0x200000 else 4


def put_u16(buf, i, n):
    buf[i] = n >> 8
    buf[i + 1] = n & 0xFF
    return i + 2


def put_str(buf, i, s):
    n = len(s)
    i = put_u16(buf, i, n)
    buf[i : i + n] = s
    return i + n


def connect(buf, client_id, keepalive_s, user, password, will):
    # will: (topic, message, retain, qos) with bytes topic and message, or None.
    n = 10 + 2 + len(client_id)
    flags = 0x02  # clean session
    if will:
        n += 4 + len(will[0]) + len(will[1])
        flags |= 0x04 | will[3] << 3 | (0x20 if will[2] else 0)
    if user is not None:
        n += 2 + len(user)
        flags |= 0x80
        if password is not None:
            n += 2 + len(password)
            flags |= 0x40
    buf[0] = _CONNECT
    i = put_length(buf, 1, n)
    i = put_str(buf, i, b"MQTT")
    buf[i] = 4  # protocol level 3.1.1
    buf[i + 1] = flags
    i = put_u16(buf, i + 2, keepalive_s)
    i = put_str(buf, i, client_id)
    if will:
        i = put_str(buf, i, will[0])
        i = put_str(buf, i, will[1])
    if user is not None:
        i = put_str(buf, i, user)
        if password is not None:
            i = put_str(buf, i, password)
    return i


def publish_header(buf, topic, size, qos, retain, dup, pid):
    # Fixed header, topic and packet id; the payload (size bytes) follows.
    n = 2 + len(topic) + size + (2 if qos else 0)
    buf[0] = _PUBLISH | qos << 1 | (_RETAIN if retain else 0) | (_DUP if dup else 0)
    i = put_length(buf, 1, n)
    i = put_str(buf, i, topic)
    if qos:
        i = put_u16(buf, i, pid)
    return i


def subscribe(buf, pid, topic, qos):
    buf[0] = _SUBSCRIBE
    i = put_length(buf, 1, 2 + 2 + len(topic) + 1)
    i = put_u16(buf, i, pid)
    i = put_str(buf, i, topic)
    buf[i] = qos
    return i + 1


def short(buf, kind, pid=None):
    # _PUBACK (with pid), _PINGREQ, _DISCONNECT.
    buf[0] = kind
    if pid is None:
        buf[1] = 0
        return 2
    buf[1] = 2
    return put_u16(buf, 2, pid)
