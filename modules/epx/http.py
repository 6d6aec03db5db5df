# A strict, minimal HTTP/1.0 GET client on asyncio streams, for fetching firmware images:
# status 200 only (no redirects), a Content-Length, a bounded header, and a deadline on the
# connection and on every read so a stalled server is noticed.
import asyncio
import socket
from micropython import const

from epx import watchdog

_HEADER_MAX = const(1024)
# lwIP's resolver blocks the VM: 7 s for each DNS server that does not answer (core/dns.c),
# up to 3 servers (LWIP_DNS_MAX_SERVERS), within the watchdog's allowance.
_RESOLVE_MS = const(30000)


class HTTPError(Exception):
    pass


def split_url(url):
    """(host, port, path) of an http:// URL; ValueError otherwise."""
    if not url.startswith("http://"):
        raise ValueError("URL must start with http://")
    rest = url[7:]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, _, port = hostport.partition(":")
    if not host or "@" in host or any(c <= " " for c in url):
        raise ValueError("bad URL")
    try:
        port = int(port) if port else 80
    except ValueError:
        raise ValueError("bad port in URL")
    if not 0 < port < 65536:
        raise ValueError("bad port in URL")
    return host, port, path


async def _read(stream, buf, timeout_ms):
    n = await asyncio.wait_for_ms(stream.readinto(buf), timeout_ms)
    return n or 0


class Response:
    """An open GET: `length` body bytes to take with readinto(); close() when done."""

    def __init__(self, stream, length, timeout_ms):
        self.stream = stream
        self.length = length
        self.left = length
        self.timeout_ms = timeout_ms
        self.early = None  # body bytes that came with the header

    async def readinto(self, buf):
        """Fill as much of buf as one read gives (at most what is left): the byte count, 0
        at the end of the body. Raises HTTPError when the body ends short, OSError on a
        connection error, asyncio.TimeoutError when the server stalls."""
        if not self.left:
            return 0
        mv = memoryview(buf)
        if len(mv) > self.left:
            mv = mv[:self.left]
        early = self.early
        if early:
            n = min(len(early), len(mv))
            mv[:n] = early[:n]
            self.early = early[n:] if n < len(early) else None
        else:
            n = await _read(self.stream, mv, self.timeout_ms)
            if not n:
                raise HTTPError("body ended after %d of %d bytes" % (self.length - self.left, self.length))
        self.left -= n
        return n

    async def close(self):
        await self.stream.wait_closed()


def _header(text, name):
    i = text.find("\r\n" + name + ":")
    if i < 0:
        return None
    i += len(name) + 3
    return text[i:text.find("\r\n", i)].strip()


async def get(url, timeout_ms=10000):
    """Send GET for url; return a Response once a 200 header with a Content-Length is in."""
    host, port, path = split_url(url)
    try:
        with watchdog.may_block(_RESOLVE_MS):
            addr = socket.getaddrinfo(host, port)[0][-1][0]
    except OSError as e:
        raise HTTPError("cannot resolve %s (error %s)" % (host, e.args[0]))
    stream, _ = await asyncio.wait_for_ms(asyncio.open_connection(addr, port), timeout_ms)
    try:
        if port != 80:
            host = "%s:%d" % (host, port)
        stream.write(("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: epx\r\n\r\n" % (path, host)).encode())
        await asyncio.wait_for_ms(stream.drain(), timeout_ms)
        head = bytearray(_HEADER_MAX)
        fill = 0
        while True:
            n = await _read(stream, memoryview(head)[fill:], timeout_ms)
            if not n:
                raise HTTPError("connection closed in the HTTP header")
            fill += n
            end = head.find(b"\r\n\r\n", 0, fill)
            if end >= 0:
                break
            if fill == _HEADER_MAX:
                raise HTTPError("HTTP header longer than %d bytes" % _HEADER_MAX)
        text = bytes(head[:end + 2]).decode().lower()
        status = text[:text.find("\r\n")].split(None, 2)
        if len(status) < 2 or not status[0].startswith("http/1."):
            raise HTTPError("not an HTTP response")
        if status[1] != "200":
            if status[1][:1] == "3":
                raise HTTPError("HTTP %s: redirects are not followed" % status[1])
            raise HTTPError("HTTP " + status[1])
        if _header(text, "transfer-encoding") is not None:
            raise HTTPError("Transfer-Encoding is not supported")
        length = _header(text, "content-length")
        if length is None or not length.isdigit():
            raise HTTPError("no Content-Length")
        r = Response(stream, int(length), timeout_ms)
        if end + 4 < fill:
            r.early = bytes(head[end + 4:fill])
        return r
    except BaseException:
        await stream.wait_closed()
        raise
