"""uumqtt, the MQTT client, in the host firmware against mosquitto, a fault-injecting
proxy and a hostile fake broker."""

import os
import socket

import pytest

from brokerkit import TestCA
from mqttkit import FakeBroker, Script, CONNACK_OK, packet, read_packet

HEAD = """
import asyncio, gc, json, time, uumqtt
def out(*a): print(json.dumps(a))
def err(e): return type(e).__name__ if e else None
import network
_w = network.WLAN(network.STA_IF); _w.active(True); _w.connect('epx-sim', None)
"""


@pytest.fixture
def run(tmp_path):
    scripts = []

    def start(code, **kw):
        s = Script(HEAD + code, tmp_path, **kw)
        scripts.append(s)
        return s
    yield start
    for s in scripts:
        s.close()


def test_publish_subscribe_will(broker, run, mqtt_watch):
    sub = mqtt_watch(broker)
    s = run(f"""
got = []
def on(t, m, r, d): got.append((t.decode(), m.decode(), r, d))
async def main():
    c = uumqtt.MQTTClient('dev1', '127.0.0.1', {broker.port}, keepalive=10,
                          will=('t/will', 'Offline', True, 1), on_message=on)
    await c.connect()
    await c.subscribe('t/in/#', 1)
    await c.publish('t/q0', 'zero')
    pid = await c.publish('t/q1', 'y' * 3000, retain=True, qos=1)
    out('acked', await c.wait_ack(pid))
    out('ready')
    while len(got) < 2:
        await asyncio.sleep_ms(10)
    out('got', got)
    import sys; sys.stdin.readline()
asyncio.run(main())
""")
    assert sub.wait_for("t/q0")[1] == "zero"
    assert sub.wait_for("t/q1")[1] == "y" * 3000
    assert s.expect(lambda m: m[0] == "acked") == ["acked", True]
    s.expect(lambda m: m == ["ready"])
    sub.publish("t/in/a", "one", qos=0)
    sub.publish("t/in/b", "two", qos=1)
    got = s.expect(lambda m: m[0] == "got")[1]
    assert sorted(got) == [["t/in/a", "one", False, False], ["t/in/b", "two", False, False]]
    s.close()  # killed: no DISCONNECT, the broker sends the will
    assert sub.wait_for("t/will")[1] == "Offline"


def test_user_password(broker_auth, run):
    s = run(f"""
async def main():
    for pw in ('wrong', 'secret'):
        c = uumqtt.MQTTClient('dev2', '127.0.0.1', {broker_auth.port}, user='epx', password=pw)
        try:
            await c.connect()
            out(pw, 'ok')
            await c.disconnect()
        except uumqtt.ConnectRefused as e:
            out(pw, 'refused', e.args[0])
asyncio.run(main())
""")
    assert s.next() == ["wrong", "refused", 5]
    assert s.next() == ["secret", "ok"]


def test_tls_verifies_the_broker(tmp_path, broker_tls, test_ca, run):
    """Certificate chain and dates, the latter against the device's clock: it starts at
    2000-01-01 (as an ESP32's), where the broker's certificate is not yet valid."""
    import datetime

    (tmp_path / "ca.der").write_bytes(test_ca.ca_der)
    (tmp_path / "other.der").write_bytes(TestCA(str(tmp_path / "other")).ca_der)
    now = datetime.datetime.now(datetime.timezone.utc)
    rtc = (now.year, now.month, now.day, now.weekday(), now.hour, now.minute, now.second, 0)
    s = run(f"""
import machine, tls
async def main():
    for ca in ('ca.der', 'set the time', 'ca.der', 'other.der'):
        if ca == 'set the time':
            machine.RTC().datetime({rtc})
            continue
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_REQUIRED
        ctx.load_verify_locations(open(ca, 'rb').read())
        c = uumqtt.MQTTClient('dev3', '127.0.0.1', {broker_tls.port}, ssl=ctx,
                              server_hostname='localhost')
        try:
            await c.connect()
            pid = await c.publish('t/tls', 'secure', qos=1)
            out(ca, 'ok', await c.wait_ack(pid))
            await c.disconnect()
        except uumqtt.MQTTError as e:
            out(ca, err(e), str(e.args[0]).strip() if e.args else '')
asyncio.run(main())
""")
    assert s.next() == ["ca.der", "ConnectionLost", "The certificate validity starts in the future"]
    assert s.next() == ["ca.der", "ok", True]
    assert s.next()[:2] == ["other.der", "ConnectionLost"]


def test_qos1_resent_with_dup_after_reset(broker, proxy, run, mqtt_watch):
    sub = mqtt_watch(broker)
    s = run(f"""
import sys
async def main():
    c = uumqtt.MQTTClient('dev4', '127.0.0.1', {proxy.port}, keepalive=30)
    await c.connect()
    out('ready'); sys.stdin.readline()
    pid = await c.publish('t/q1', 'must arrive', qos=1)
    out('acked', await c.wait_ack(pid, 500), len(c.inflight))
    out('lost', err(await c.wait_closed()))
    await c.connect()
    out('acked', await c.wait_ack(pid), len(c.inflight))
asyncio.run(main())
""")
    assert s.next() == ["ready"]
    proxy.set("blackhole")
    s.poke()
    assert s.next() == ["acked", False, 1]
    proxy.reset(then="pass")
    assert s.next() == ["lost", "ConnectionLost"]
    assert s.next() == ["acked", True, 0]
    assert sub.wait_for("t/q1")[1] == "must arrive"


def resent_as_dup(first, again):
    """MQTT 3.1.1 4.4: a QoS 1 PUBLISH sent again after a reconnect has DUP set and is
    otherwise the same packet (packet id included)."""
    (h1, b1), (h2, b2) = first, again
    return h1 & 0x06 == 0x02 and h1 & 0x08 == 0 and h2 == h1 | 0x08 and b2 == b1


def test_qos1_resend_carries_dup_on_the_wire(run):
    # mosquitto strips DUP before subscribers see it: read the client's packets raw.
    publishes = []

    def handler(conn, i):
        conn.sendall(CONNACK_OK)
        p = read_packet(conn)
        while p and p[0] & 0xF0 != 0x30:
            p = read_packet(conn)
        publishes.append(p)
        if i == 1:  # acknowledge the resend, then wait for the client to leave
            conn.sendall(packet(0x40, p[1][2 + p[1][1]:][:2]))
            while read_packet(conn):
                pass
    fake = FakeBroker(handler)
    s = run(f"""
async def main():
    c = uumqtt.MQTTClient('dup', '127.0.0.1', {fake.port}, keepalive=30)
    await c.connect()
    pid = await c.publish('t/q1', 'again', qos=1)
    out('lost', err(await c.wait_closed()))
    await c.connect()
    out('acked', await c.wait_ack(pid))
    await c.disconnect()
asyncio.run(main())
""")
    assert s.next() == ["lost", "ConnectionLost"]
    assert s.next() == ["acked", True]
    first, again = publishes
    assert first[1] == b"\x00\x04t/q1\x00\x01again"
    assert resent_as_dup(first, again)
    # The check fails on a resend without DUP, or with another packet id.
    assert not resent_as_dup(first, first)
    assert not resent_as_dup(first, (again[0], again[1].replace(b"\x00\x01again", b"\x00\x02again")))


def test_half_open_found_within_one_keepalive(proxy, run):
    # docs/core.md: a half-open connection is noticed within one keepalive of the last
    # packet received. The client reports that time in its KeepaliveTimeout.
    s = run(f"""
import sys
async def main():
    c = uumqtt.MQTTClient('dev5', '127.0.0.1', {proxy.port}, keepalive=2)
    await c.connect()
    out('ready'); sys.stdin.readline()
    e = await c.wait_closed()
    out('closed', err(e), e.args[0])
asyncio.run(main())
""")
    assert s.next() == ["ready"]
    proxy.set("blackhole")
    s.poke()
    m = s.next()
    assert m[:2] == ["closed", "KeepaliveTimeout"]
    assert 1000 <= m[2] <= 2000 + 100, m  # one keepalive, and the loop's scheduling slack


def connect_packet(client_id, keepalive):
    """An MQTT 3.1.1 CONNECT (clean session) as a plain client sends it."""
    cid = client_id.encode()
    return packet(0x10, b"\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big")
                  + len(cid).to_bytes(2, "big") + cid)


def test_an_idle_client_keeps_its_connection(broker, run):
    # MQTT 3.1.1 3.1.2.10: the broker drops a client it has heard nothing from for 1.5
    # keepalives. The client, idle for 2.5 keepalives, pings and stays connected; a client
    # that never pings, connected to the same broker meanwhile with the same keepalive, is
    # dropped.
    s = run(f"""
async def main():
    c = uumqtt.MQTTClient('idle', '127.0.0.1', {broker.port}, keepalive=2)
    await c.connect()
    out('ready')
    await asyncio.sleep_ms(5000)
    out('connected', c.connected, err(c.error))
    pid = await c.publish('t/idle', 'still here', qos=1)
    out('acked', await c.wait_ack(pid, 5000))
asyncio.run(main())
""")
    assert s.next() == ["ready"]
    silent = socket.create_connection(("127.0.0.1", broker.port), timeout=30)
    silent.sendall(connect_packet("silent", 2))
    assert read_packet(silent) == (0x20, b"\x00\x00")
    assert silent.recv(1) == b""  # dropped by the broker (a timeout raises instead)
    silent.close()
    assert s.next() == ["connected", True, None]
    assert s.next() == ["acked", True]


def publish_pid(p):
    """The packet id of a QoS 1 PUBLISH (first byte, body)."""
    body = p[1]
    return body[2 + (body[0] << 8 | body[1]):][:2]


def test_a_puback_releases_only_its_message(run):
    # Three QoS 1 messages; the broker acknowledges the second only, and the client drops
    # the connection: the first and third are sent again, with DUP, and acknowledged in
    # reverse order, the first only once the client said what it still holds.
    firsts = []

    def handler(conn, i):
        conn.sendall(CONNACK_OK)
        pubs = []
        while len(pubs) < (3 if i == 0 else 2):
            p = read_packet(conn)
            assert p is not None, (i, pubs)
            if p[0] & 0xF0 == 0x30:
                pubs.append(p)
        firsts.append([p[0] for p in pubs])
        if i == 0:
            conn.sendall(packet(0x40, publish_pid(pubs[1])))
        else:
            conn.sendall(packet(0x40, publish_pid(pubs[1])))
            p = read_packet(conn)
            while p is not None and p[0] & 0xF0 != 0x30:  # the client's QoS 0 "next"
                p = read_packet(conn)
            conn.sendall(packet(0x40, publish_pid(pubs[0])))
        while read_packet(conn):
            pass
        return i == 0
    fake = FakeBroker(handler)
    s = run(f"""
async def main():
    c = uumqtt.MQTTClient('sel', '127.0.0.1', {fake.port}, keepalive=30)
    await c.connect()
    pids = []
    for n in range(3):
        pids.append(await c.publish('t/q1', str(n), qos=1))
    out('second', await c.wait_ack(pids[1]), [p in c.inflight for p in pids])
    c.close()
    await c.connect()
    out('third', await c.wait_ack(pids[2]), [p in c.inflight for p in pids])
    await c.publish('t/next', 'next')
    out('first', await c.wait_ack(pids[0]), [p in c.inflight for p in pids])
    await c.disconnect()
asyncio.run(main())
""")
    assert s.next() == ["second", True, [True, False, True]]
    assert s.next() == ["third", True, [True, False, False]]
    assert s.next() == ["first", True, [False, False, False]]
    assert s.wait() == 0
    assert firsts == [[0x32, 0x32, 0x32], [0x3A, 0x3A]]  # QoS 1; QoS 1 with DUP
    assert not fake.errors


FIRST = """
async def main():
    n = 0
    c = uumqtt.MQTTClient('dev6', '127.0.0.1', {port}, keepalive=60, max_packet=1024,
                          timeout_ms=2000, on_message=lambda *a: None)
    while True:
        try:
            await c.connect()
            e = await c.wait_closed()
        except uumqtt.MQTTError as x:
            e = x
        if isinstance(e, uumqtt.ConnectionLost) and e.args and isinstance(e.args[0], OSError) and n >= {count}:
            break
        out('error', n, err(e))
        n += 1
asyncio.run(main())
"""

HOSTILE = [
    # (what the fake broker sends after CONNECT, error the client reports)
    (b"\x30\xff\xff\xff\x7f", "PacketTooLarge"),                   # 256 MB announced
    (b"\x20\x02\x00\x00" + b"\x30\x81\x08", "PacketTooLarge"),     # 1025 > max_packet
    (b"\x20\x02\x00\x00" + b"\x30\xff\xff\xff\xff\x01", "ProtocolError"),  # 5-byte length
    (b"\x20\x02\x00\x05", "ConnectRefused"),
    (b"\x90\x03\x00\x01\x00", "ProtocolError"),                    # SUBACK before CONNACK
    (b"\x20\x03\x00\x00\x00", "ProtocolError"),                    # CONNACK too long
    (b"\x20\x02\x00\x00" + b"\x30\x04\x00\x09ab", "ProtocolError"),  # topic past the end
    (b"\x20\x02\x00\x00" + b"\x36\x04\x00\x01ab", "ProtocolError"),  # QoS 3
    (b"\x20\x02\x00\x00" + b"\x40\x03\x00\x01\x00", "ProtocolError"),  # PUBACK length 3
    (b"\x20\x02\x00\x00" + b"\x10\x00", "ProtocolError"),          # CONNECT from the broker
    (b"\x20\x02\x00\x00" + b"\xf0\x00", "ProtocolError"),          # reserved type
    (b"\x20\x02\x00\x00" + b"\xd0\x01\x00", "ProtocolError"),      # PINGRESP with a body
    (b"\x20\x02\x00\x00" + b"\x30\x10\x00\x03a/b", "ConnectionLost"),  # truncated, then EOF
    (b"\x20\x02", "Timeout"),                                      # CONNACK never completes
]


def test_hostile_broker(run):
    def handler(conn, i):
        if i >= len(HOSTILE):
            return False
        conn.sendall(HOSTILE[i][0])
        if HOSTILE[i][1] != "Timeout":
            conn.shutdown(socket.SHUT_WR)  # FIN, not RST: the client reads it all
        while read_packet(conn):  # until the client drops the connection
            pass
    fake = FakeBroker(handler)
    s = run(FIRST.format(port=fake.port, count=len(HOSTILE)))
    seen = [s.next()[2] for _ in HOSTILE]
    assert seen == [e for _, e in HOSTILE]
    assert s.wait() == 0
    assert not fake.errors


def test_incoming_flags_and_puback(run):
    acks = []

    def handler(conn, i):
        if i:
            return False
        conn.sendall(CONNACK_OK)
        conn.sendall(packet(0x3B, b"\x00\x03a/b\x00\x07dup"))  # QoS 1, DUP, retained
        conn.sendall(packet(0x31, b"\x00\x03a/cret"))  # QoS 0, retained
        acks.append(read_packet(conn))
        while read_packet(conn):
            pass
    fake = FakeBroker(handler)
    s = run(f"""
got = []
def on(t, m, r, d): got.append((t.decode(), m.decode(), r, d))
async def main():
    c = uumqtt.MQTTClient('dev8', '127.0.0.1', {fake.port}, on_message=on)
    await c.connect()
    while len(got) < 2:
        await asyncio.sleep_ms(5)
    await asyncio.sleep_ms(50)
    out(got)
    await c.disconnect()
asyncio.run(main())
""")
    assert s.next() == [[["a/b", "dup", True, True], ["a/c", "ret", True, False]]]
    s.wait()
    assert acks == [(0x40, b"\x00\x07")]
    assert not fake.errors


def test_timeouts_leave_no_socket_open(proxy, run):
    proxy.set("blackhole")  # accepts, never answers: every CONNECT times out
    s = run(f"""
import sys
async def main():
    c = uumqtt.MQTTClient('dev9', '127.0.0.1', {proxy.port}, timeout_ms=50)
    errors = set()
    for _ in range(40):
        try:
            await c.connect()
        except uumqtt.MQTTError as e:
            errors.add(err(e))
    out('done', sorted(errors))
    sys.stdin.readline()
asyncio.run(main())
""")
    assert s.next(timeout=60) == ["done", ["Timeout"]]
    sockets = [f for f in os.listdir(f"/proc/{s.proc.pid}/fd")
               if os.readlink(f"/proc/{s.proc.pid}/fd/{f}").startswith("socket:")]
    assert len(sockets) < 5, sockets
    s.poke()


def test_subscribe_refused_and_inflight_bounded(run):
    def handler(conn, i):
        if i:
            return False
        conn.sendall(CONNACK_OK)
        first, body = read_packet(conn)  # SUBSCRIBE: refuse it
        assert first == 0x82
        conn.sendall(packet(0x90, body[:2] + b"\x80"))
        while read_packet(conn):  # PUBLISH QoS 1 never acknowledged
            pass
    fake = FakeBroker(handler)
    s = run(f"""
async def main():
    c = uumqtt.MQTTClient('dev10', '127.0.0.1', {fake.port}, max_inflight=3)
    await c.connect()
    try:
        await c.subscribe('a/#', 1)
    except uumqtt.MQTTError as e:
        out('subscribe', err(e))
    try:
        for i in range(4):
            await c.publish('a/b', str(i), qos=1)
    except uumqtt.MQTTError as e:
        out('publish', i, err(e), len(c.inflight))
    await c.disconnect()
asyncio.run(main())
""")
    assert s.next() == ["subscribe", "SubscribeRefused"]
    assert s.next() == ["publish", 3, "QueueFull", 3]
    assert s.wait() == 0
    assert not fake.errors
