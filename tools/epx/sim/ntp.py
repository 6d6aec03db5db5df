"""A real NTP server on a free loopback UDP port: answers client requests (RFC 5905 mode 3)
with server packets (mode 4) carrying the time the test chooses (`epx sim`'s demo world:
the host's clock, when=None).

    with NtpServer(datetime(2025, 6, 1, 12, tzinfo=timezone.utc)) as ntp:
        config ... ntpserver 127.0.0.1:{ntp.port}
        ntp.mode = "silent"   # or "answer", "unsynchronised" (stratum 0, a kiss-o'-death),
                              # "stray" (an answer to some other request)

Timestamps are seconds since 1900-01-01 00:00 UTC (RFC 5905 section 6, era 0; later eras
wrap modulo 2**32) and a 32-bit binary fraction, computed here with CPython's datetime."""

import datetime
import socket
import struct
import threading

NTP_EPOCH = datetime.datetime(1900, 1, 1, tzinfo=datetime.timezone.utc)


def ntp_timestamp(when):
    """The 64-bit NTP timestamp of an aware datetime: (seconds mod 2**32, fraction)."""
    delta = when - NTP_EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds % 2**32, delta.microseconds * 2**32 // 1_000_000


class NtpServer:
    def __init__(self, when=None, mode="answer"):
        self.when = when  # the time every answer carries (None: now)
        self.mode = mode
        self.requests = []  # every request as received
        self.answered = 0
        self._closed = False
        self._cv = threading.Condition()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.server = f"127.0.0.1:{self.port}"  # as config's ntpserver names it
        self._thread = threading.Thread(target=self._serve, daemon=True, name="ntp")
        self._thread.start()

    def packet(self, request):
        """The server's answer to `request` (mode 4, stratum 1, origin = the request's
        transmit timestamp; receive and transmit = `when`)."""
        stratum, leap = (0, 3) if self.mode == "unsynchronised" else (1, 0)
        version = request[0] >> 3 & 7
        when = self.when or datetime.datetime.now(datetime.timezone.utc)
        now = struct.pack("!II", *ntp_timestamp(when))
        origin = bytes(8) if self.mode == "stray" else request[40:48]
        return (struct.pack("!BBbbII4s", leap << 6 | version << 3 | 4, stratum, request[2], -20,
                            0, 0, b"EPXT" if stratum else b"RATE")
                + now + origin + now + now)

    def wait_requests(self, n, timeout=10):
        """Until n requests came in."""
        with self._cv:
            assert self._cv.wait_for(lambda: len(self.requests) >= n, timeout), self.requests

    def _serve(self):
        while True:
            try:
                request, peer = self._sock.recvfrom(512)
            except OSError:
                return
            if self._closed:
                return
            with self._cv:
                self.requests.append(request)
                self._cv.notify_all()
            if len(request) < 48 or request[0] & 7 != 3 or self.mode == "silent":
                continue
            self._sock.sendto(self.packet(request), peer)
            self.answered += 1

    def close(self):
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
