# Incoming packets, framed in one preallocated buffer: a packet is parsed in place and
# handed out as (first byte, start, end) into `buf`, valid until the next call. A packet
# whose length exceeds the buffer is refused before any of it is stored.
from .errors import ConnectionLost, PacketTooLarge, ProtocolError


class PacketReader:
    def __init__(self, max_packet):
        self.max_packet = max_packet
        self.buf = bytearray(max_packet + 5)  # + fixed header
        self.mv = memoryview(self.buf)
        self.stream = None
        self.head = 0  # first unparsed byte
        self.tail = 0  # end of received data

    def reset(self, stream):
        self.stream = stream
        self.head = self.tail = 0

    def _parse(self):
        buf = self.buf
        i = self.head
        end = self.tail
        n = 0
        shift = 0
        j = i + 1
        while True:
            if j >= end:
                return None
            b = buf[j]
            n |= (b & 0x7F) << shift
            j += 1
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("bad remaining length")
        if n > self.max_packet:
            raise PacketTooLarge(n)
        if j + n > end:
            return None
        self.head = j + n
        return buf[i], j, j + n

    async def next(self):
        while True:
            p = self._parse()
            if p:
                return p
            head = self.head
            if head == self.tail:
                self.head = self.tail = 0
            elif head:
                # Keep the partial packet, moved to the front, so a whole one fits.
                n = self.tail - head
                self.mv[:n] = self.mv[head : self.tail]
                self.head = 0
                self.tail = n
            try:
                k = await self.stream.readinto(self.mv[self.tail :])
            except OSError as e:
                raise ConnectionLost(e)
            if k is None:
                continue  # TLS record not complete yet
            if not k:
                raise ConnectionLost("closed by broker")
            self.tail += k
