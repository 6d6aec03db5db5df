# The captive portal's DNS responder (RFC 1035): every A query gets one answer, the
# device's own address, so whatever name a phone looks up leads to the portal. Other query
# types get no records; anything that is not a one-question query is dropped.
import asyncio
import socket
from asyncio import core
from micropython import const

PORT = const(53)
_MAX = const(512)  # a DNS message over UDP (RFC 1035 4.2.1)
_HEADER = const(12)
_TTL = const(60)
_TYPE_A = const(1)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)


def _question_end(msg):
    # The offset after the one question (labels, type, class), None if malformed.
    i = _HEADER
    n = len(msg)
    while i < n:
        length = msg[i]
        if length == 0:
            i += 5
            return i if i <= n else None
        if length & 0xC0:  # no compression in a question of its own
            return None
        i += 1 + length
    return None


class Responder:
    """Answers on UDP port 53 until close(); `ip` is the address every A query gets."""

    def __init__(self, ip):
        # The answer: the name as a pointer to the question's (offset 12), A, IN, TTL, the
        # address.
        self._rr = b"\xc0\x0c\x00\x01\x00\x01" + bytes((0, 0, 0, _TTL, 0, 4)) + \
            bytes(int(x) for x in ip.split("."))
        self._out = bytearray(_MAX + 16)  # a question and its answer
        s = self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.bind(socket.getaddrinfo("0.0.0.0", PORT)[0][-1])
        self.answered = 0
        self._task = asyncio.create_task(self._serve())

    def close(self):
        self._task.cancel()
        self._sock.close()

    async def _serve(self):
        s = self._sock
        while True:
            yield core._io_queue.queue_read(s)
            try:
                msg, addr = s.recvfrom(_MAX)
            except OSError:  # nothing after all
                continue
            n = self.answer(msg)
            if n:
                try:
                    s.sendto(memoryview(self._out)[:n], addr)
                    self.answered += 1
                except OSError:
                    pass

    def answer(self, msg):
        """Write the reply to `msg` into the output buffer: its length, 0 to drop it."""
        # A query (QR 0), opcode QUERY, exactly one question, no answers.
        if len(msg) < _HEADER or msg[2] & 0xF8 or msg[4:8] != b"\x00\x01\x00\x00":
            return 0
        end = _question_end(msg)
        if end is None:
            return 0
        out = self._out
        out[0:2] = msg[0:2]  # the query's ID
        out[2] = 0x84 | (msg[2] & 0x01)  # QR, AA, the query's RD
        out[3] = 0  # no recursion available, NOERROR
        qtype = msg[end - 4] << 8 | msg[end - 3]
        qclass = msg[end - 2] << 8 | msg[end - 1]
        a = qtype in (_TYPE_A, _TYPE_ANY) and qclass == _CLASS_IN
        out[4:12] = b"\x00\x01\x00" + (b"\x01" if a else b"\x00") + b"\x00\x00\x00\x00"
        out[_HEADER:end] = msg[_HEADER:end]
        if not a:
            return end
        out[end:end + 16] = self._rr
        return end + 16
