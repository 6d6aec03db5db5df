# MQTT 3.1.1 client on asyncio streams: connect (TCP, optional TLS), keepalive with
# PINGRESP tracking, QoS 0 and 1 publish, subscribe, incoming QoS 0/1 publish.
#
# After connect() a reader task and a pinger task run until the connection ends; the
# first error ends it, and wait_closed() returns that error. QoS 1 messages stay queued
# until their PUBACK and are sent again, with DUP, after the next connect().
import asyncio
import socket
from errno import EINPROGRESS
from time import ticks_ms, ticks_diff
from . import packet as pk
from .errors import (MQTTError, ConnectionLost, ConnectRefused, ProtocolError,
                     KeepaliveTimeout, Timeout, SubscribeRefused, QueueFull, NotConnected)
from .reader import PacketReader

_TX_SIZE = const(256)
# Packet types (the wire format is in packet.py).
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBACK = const(0x90)
_UNSUBACK = const(0xB0)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_DUP = const(0x08)
_RETAIN = const(0x01)


class MQTTClient:
    def __init__(self, client_id, server, port=1883, user=None, password=None,
                 keepalive=30, ssl=None, server_hostname=None, will=None,
                 max_packet=2048, max_inflight=8, timeout_ms=10000, on_message=None):
        self.client_id = pk.as_bytes(client_id)
        self.server = server
        self.port = port
        self.user = None if user is None else pk.as_bytes(user)
        self.password = None if password is None else pk.as_bytes(password)
        self.keepalive = keepalive
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.will = None
        if will:
            self.will = (pk.as_bytes(will[0]), pk.as_bytes(will[1]), will[2], will[3])
        self.max_inflight = max_inflight
        self.timeout_ms = timeout_ms
        self.on_message = on_message  # (topic bytes, message bytes, retained, dup)
        self.inflight = {}  # pid -> [topic, message, retain]
        self.error = None
        self._rx = PacketReader(max_packet)
        self._tx = bytearray(_TX_SIZE)
        self._txmv = memoryview(self._tx)
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()  # an ack arrived or the connection ended
        self._down = asyncio.Event()
        self._down.set()
        self._sock = None
        self._stream = None
        self._tasks = [None, None, None]  # reader, pinger, writer
        self._pid = 0
        self._subacks = {}
        self._ping_sent = 0  # ticks of an unanswered PINGREQ, 0 when none
        self.last_rx = 0

    @property
    def connected(self):
        return not self._down.is_set()

    async def connect(self):
        self._close()
        self.error = None
        try:
            self._open()
            try:
                kind, i, end = await asyncio.wait_for_ms(self._handshake(), self.timeout_ms)
            except asyncio.TimeoutError:
                raise Timeout("CONNACK")
            buf = self._rx.buf
            if kind != _CONNACK or end - i != 2:
                raise ProtocolError("expected CONNACK")
            if buf[i + 1]:
                raise ConnectRefused(buf[i + 1])
        except asyncio.CancelledError:
            self._close(NotConnected("cancelled"))
            raise
        except Exception as e:
            self._close(e if isinstance(e, MQTTError) else ConnectionLost(e))
            raise self.error
        self.last_rx = ticks_ms()
        self._ping_sent = 0
        self._tasks[0] = asyncio.create_task(self._read_loop())
        if self.keepalive:
            self._tasks[1] = asyncio.create_task(self._ping_loop())
        for pid in sorted(self.inflight):
            await self._publish(pid, self.inflight[pid], True)

    def _open(self):
        # Our own socket, not asyncio.open_connection(): it must be closed whatever
        # happens next, a timeout included (the ESP32 has few sockets). The TCP connect
        # completes while CONNECT waits to be written.
        ai = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0]
        s = self._sock = socket.socket(ai[0], ai[1], ai[2])
        s.setblocking(False)
        try:
            s.connect(ai[-1])
        except OSError as e:
            if e.errno != EINPROGRESS:
                raise
        if self.ssl:
            s = self._sock = self.ssl.wrap_socket(
                s, server_hostname=self.server_hostname or self.server,
                do_handshake_on_connect=False)
            s.setblocking(False)
        self._stream = asyncio.StreamWriter(s)
        self._rx.reset(self._stream)
        self._down.clear()

    async def _handshake(self):
        n = pk.connect(self._tx, self.client_id, self.keepalive, self.user, self.password,
                       self.will)
        await self._send(self._txmv[:n])
        return await self._rx.next()

    async def wait_closed(self):
        # The error that ended the connection (None after disconnect()).
        await self._down.wait()
        return self.error

    async def disconnect(self):
        if self.connected:
            try:
                await self._send(self._txmv[: pk.short(self._tx, _DISCONNECT)])
            except MQTTError:
                pass
        self._close()

    def close(self, err=None):
        """Drop the connection without DISCONNECT (the broker sends the will), e.g. when
        the network went away; wait_closed() returns err."""
        self._close(err or ConnectionLost("closed"))

    async def publish(self, topic, msg, retain=False, qos=0):
        # QoS 0: returns once written, raises if not. QoS 1: queued until acknowledged
        # (resent after a reconnect); returns the packet id, see wait_ack().
        topic = pk.as_bytes(topic)
        msg = pk.as_bytes(msg)
        if not qos:
            return await self._publish(0, (topic, msg, retain), False)
        if len(self.inflight) >= self.max_inflight:
            raise QueueFull(len(self.inflight))
        pid = self._next_pid()
        m = self.inflight[pid] = (topic, msg, retain)
        if self.connected:
            try:
                await self._publish(pid, m, False)
            except MQTTError:
                pass  # sent again after the next connect
        return pid

    async def wait_ack(self, pid, timeout_ms=None):
        # True once PUBACK arrived; False if the connection ended first or on timeout.
        t0 = ticks_ms()
        while pid in self.inflight:
            ev = self._changed
            if not self.connected:
                return False
            left = (timeout_ms or self.timeout_ms) - ticks_diff(ticks_ms(), t0)
            if left <= 0:
                return False
            try:
                await asyncio.wait_for_ms(ev.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    async def subscribe(self, topic, qos=0):
        topic = pk.as_bytes(topic)
        pid = self._next_pid()
        self._subacks[pid] = None
        try:
            n = pk.subscribe(self._tx, pid, topic, qos)
            await self._send(self._txmv[:n])
            t0 = ticks_ms()
            while self._subacks[pid] is None:
                ev = self._changed
                if not self.connected:
                    raise self.error or NotConnected()
                left = self.timeout_ms - ticks_diff(ticks_ms(), t0)
                if left <= 0:
                    raise Timeout("SUBACK")
                try:
                    await asyncio.wait_for_ms(ev.wait(), left)
                except asyncio.TimeoutError:
                    pass
            if self._subacks[pid] & 0x80:
                raise SubscribeRefused(topic)
        finally:
            del self._subacks[pid]

    def _next_pid(self):
        pid = self._pid
        while True:
            pid = pid % 65535 + 1
            if pid not in self.inflight and pid not in self._subacks:
                self._pid = pid
                return pid

    async def _publish(self, pid, m, dup):
        topic, msg, retain = m
        async with self._lock:
            n = pk.publish_header(self._tx, topic, len(msg), 1 if pid else 0, retain, dup, pid)
            if n + len(msg) <= _TX_SIZE:
                self._tx[n : n + len(msg)] = msg
                await self._write(self._txmv[: n + len(msg)])
            else:
                await self._write(self._txmv[:n], msg)

    async def _send(self, buf):
        async with self._lock:
            await self._write(buf)

    async def _write(self, a, b=None):
        # Called with the lock held: the transmit buffer is in use until drained.
        if self._stream is None:
            raise self.error or NotConnected()
        self._tasks[2] = asyncio.current_task()
        try:
            self._stream.write(a)
            if b:
                self._stream.write(b)
            await self._stream.drain()
        except OSError as e:
            self._close(ConnectionLost(e))
            raise self.error
        except asyncio.CancelledError:
            if self._stream is None:  # cancelled by _close()
                raise self.error
            raise
        finally:
            self._tasks[2] = None

    async def _read_loop(self):
        try:
            while True:
                kind, i, end = await self._rx.next()
                self.last_rx = ticks_ms()
                self._ping_sent = 0
                await self._dispatch(kind, i, end)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # MQTTError, or raised by on_message
            self._close(e)

    async def _dispatch(self, kind, i, end):
        buf = self._rx.buf
        n = end - i
        if kind & 0xF0 == _PUBLISH:
            qos = kind >> 1 & 3
            if qos > 1 or n < 2:
                raise ProtocolError("PUBLISH")
            j = i + 2 + (buf[i] << 8 | buf[i + 1])
            if j + (2 if qos else 0) > end:
                raise ProtocolError("PUBLISH topic")
            topic = bytes(buf[i + 2 : j])
            pid = 0
            if qos:
                pid = buf[j] << 8 | buf[j + 1]
                j += 2
            if self.on_message:
                self.on_message(topic, bytes(buf[j:end]), bool(kind & _RETAIN),
                                bool(kind & _DUP))
            if qos:
                async with self._lock:
                    await self._write(self._txmv[: pk.short(self._tx, _PUBACK, pid)])
        elif kind == _PUBACK and n == 2:
            self.inflight.pop(buf[i] << 8 | buf[i + 1], None)
            self._notify()
        elif kind == _SUBACK and n == 3:
            pid = buf[i] << 8 | buf[i + 1]
            if pid in self._subacks:
                self._subacks[pid] = buf[i + 2]
                self._notify()
        elif kind == _PINGRESP and n == 0:
            pass
        elif kind == _UNSUBACK and n == 2:
            pass
        else:
            raise ProtocolError("packet 0x%02x length %d" % (kind, n))

    def _notify(self):
        # A fresh Event per change: a waiter holding the old one cannot miss it.
        ev = self._changed
        self._changed = asyncio.Event()
        ev.set()

    async def _ping_loop(self):
        # Ping every keepalive/2; an unanswered ping after another keepalive/2 means
        # the connection is half-open, so it is found within one keepalive.
        half = self.keepalive * 500
        try:
            while True:
                await asyncio.sleep_ms(half)
                if self._ping_sent:
                    self._close(KeepaliveTimeout(ticks_diff(ticks_ms(), self.last_rx)))
                    return
                self._ping_sent = ticks_ms() or 1
                await self._send(self._txmv[: pk.short(self._tx, _PINGREQ)])
        except asyncio.CancelledError:
            pass
        except MQTTError:
            pass  # _close() already ran

    def _close(self, err=None):
        if self._sock is None:
            return
        if self.error is None:
            self.error = err
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not None and t is not me:
                t.cancel()
        self._tasks[0] = self._tasks[1] = self._tasks[2] = None
        self._sock.close()
        self._sock = None
        self._stream = None
        self._down.set()
        self._notify()
