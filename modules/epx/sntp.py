# The wall clock from SNTP (RFC 4330, a client of RFC 5905 servers): a round asks the
# configured servers in turn once the network is up, then every _PERIOD_MS; a round that
# gets no time is logged and retried with backoff. The ESP32's RTC starts at 2000-01-01 at
# power-on and keeps the time through every other reset, so known() may be true before the
# first round. TLS needs it (certificate dates): mqtt waits with when_known().
import asyncio
import machine
import os
import socket
import struct
import time
from random import randint

from epx import config, log, loop, net, watchdog

_PORT = const(123)
_NTP_TO_2000 = const(3155673600)  # seconds from 1900-01-01 (NTP era 0) to 2000-01-01
_PERIOD_MS = const(14400000)  # 4 h between rounds
_TIMEOUT_MS = const(3000)  # for one server's answer
_FIRST_RETRY_MS = const(15000)
_MAX_RETRY_MS = const(900000)
_MAX_SERVERS = const(4)


def _servers(text):
    found = []
    for item in text.replace(",", " ").split():
        host, _, port = item.partition(":")
        if not host or port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("%r is not host or host:port" % item)
        found.append((host, int(port) if port else _PORT))
    if not 0 < len(found) <= _MAX_SERVERS:
        raise ValueError("1 to %d servers" % _MAX_SERVERS)
    return found


SERVERS = config.key("ntpserver", _servers, [("pool.ntp.org", _PORT)], "NTP servers||pool.ntp.org|Up to 4, host or host:port (TLS needs the time)")

_buf = bytearray(48)
_retry_ms = _FIRST_RETRY_MS
_due = True  # a round is due (none succeeded yet, the last failed, or the timer fired)
_round = None  # the task of the round under way
_next = None  # the timer of the next round
_waiting = []  # callbacks for when the time is known


def known():
    """The clock holds a real date (set by SNTP, or kept by the RTC through a reset)."""
    return log.utc() is not None


def when_known(callback):
    """callback() once the time is known: now if it is."""
    if known():
        callback()
    else:
        _waiting.append(callback)


def start():
    global _next
    if _next is None:
        _next = loop.Timer(_timer)
        net.sm.observe(_net_changed)
        _begin()


def _timer():
    global _due
    _due = True
    _begin()


def _net_changed(old, new):
    if new == "up" and _due:
        _next.cancel()
        _begin()


def _begin():
    global _round
    if _round is None and net.up():
        _round = loop.task(_ask_all())


async def _ask_all():
    global _round, _retry_ms, _due
    why = []
    try:
        for host, port in SERVERS.value:
            try:
                step = await _ask(host, port)
            except (OSError, ValueError, asyncio.TimeoutError) as e:
                text = str(e)
                why.append("%s: %s%s" % (host, type(e).__name__, " " + text if text else ""))
                continue
            _due = False
            _retry_ms = _FIRST_RETRY_MS
            _next.start(_PERIOD_MS)
            log.info("sntp: %s from %s (clock stepped %d s)" % (log.utc(), host, step))
            while _waiting:
                _waiting.pop(0)()
            return
        delay = _retry_ms
        _retry_ms = min(_retry_ms * 2, _MAX_RETRY_MS)
        _next.start(delay + randint(0, delay // 2))  # armed before it is said
        log.warn("sntp: no time (%s); retry in %d s" % ("; ".join(why), delay // 1000))
    finally:
        _round = None


async def _ask(host, port):
    """Set the clock from one server; how far it moved (s)."""
    with watchdog.may_block(30000):
        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    buf = _buf
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        buf[:] = bytes(48)
        buf[0] = 0x23  # LI 0, version 4, mode 3 (client)
        nonce = os.urandom(8)  # our transmit timestamp: the answer must echo it
        buf[40:48] = nonce
        sent = time.ticks_us()
        s.sendto(buf, addr)
        n = await asyncio.wait_for_ms(_receive(s), _TIMEOUT_MS)
        rtt_us = time.ticks_diff(time.ticks_us(), sent)
    finally:
        s.close()
    if n < 48 or buf[0] & 7 != 4 or buf[24:32] != nonce:
        raise ValueError("not an answer to our request")
    if buf[0] >> 6 == 3 or not 0 < buf[1] < 16:
        raise ValueError("server not synchronised (stratum %d)" % buf[1])
    rx_s, rx_f, tx_s, tx_f = struct.unpack_from("!IIII", buf, 32)
    if not tx_s:
        raise ValueError("no transmit time")
    # The answer left the server at tx; it took half the round trip less the server's share.
    served_us = (tx_s - rx_s) * 1000000 + ((tx_f * 1000000) >> 32) - ((rx_f * 1000000) >> 32)
    us = ((tx_f * 1000000) >> 32) + max(0, rtt_us - served_us) // 2
    secs = (tx_s - _NTP_TO_2000 + us // 1000000) & 0xFFFFFFFF  # era 1 (2036-) too
    before = time.time()
    tm = time.gmtime(secs)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], us % 1000000))
    return secs - before


async def _receive(s):
    reader = asyncio.StreamReader(s)
    while True:
        n = await reader.readinto(_buf)
        if n is not None:
            return n
