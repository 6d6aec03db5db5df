"""uumqtt, the MQTT client, in the host firmware against mosquitto, a fault-injecting
proxy and a hostile fake broker."""

import random
import subprocess

import pytest

from mqttkit import (Broker, FakeBroker, Proxy, Script, Subscriber, CONNACK_OK, packet,
                     read_packet)

HEAD = """
import asyncio, gc, json, time, uumqtt
def out(*a): print(json.dumps(a))
def err(e): return type(e).__name__ if e else None
import network
_w = network.WLAN(network.STA_IF); _w.active(True); _w.connect('epx-sim', None)
"""


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


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


def test_publish_subscribe_will(broker, run):
    sub = Subscriber(broker.port)
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
    assert sub.wait("t/q0") == "zero"
    assert sub.wait("t/q1") == "y" * 3000
    assert s.expect(lambda m: m[0] == "acked") == ["acked", True]
    s.expect(lambda m: m == ["ready"])
    sub.publish("t/in/a", "one", qos=0)
    sub.publish("t/in/b", "two", qos=1)
    got = s.expect(lambda m: m[0] == "got")[1]
    assert sorted(got) == [["t/in/a", "one", False, False], ["t/in/b", "two", False, False]]
    s.close()  # killed: no DISCONNECT, the broker sends the will
    assert sub.wait("t/will") == "Offline"
    sub.close()


def test_user_password(tmp_path, run):
    b = Broker(tmp_path, users={"dev": "s3cret pass"}).start()
    try:
        s = run(f"""
async def main():
    for pw in ('wrong', 's3cret pass'):
        c = uumqtt.MQTTClient('dev2', '127.0.0.1', {b.port}, user='dev', password=pw)
        try:
            await c.connect()
            out(pw, 'ok')
            await c.disconnect()
        except uumqtt.ConnectRefused as e:
            out(pw, 'refused', e.args[0])
asyncio.run(main())
""")
        assert s.next() == ["wrong", "refused", 5]
        assert s.next() == ["s3cret pass", "ok"]
    finally:
        b.stop()


def make_ca(d):
    def ssl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    for name in ("ca", "other"):
        ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", f"/CN=epx test {name}", "-keyout", f"{name}.key",
            "-out", f"{name}.crt")
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (d / "ext").write_text("subjectAltName=DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "server.crt")
    for name in ("ca", "other"):
        ssl("x509", "-in", f"{name}.crt", "-outform", "DER", "-out", f"{name}.der")


def test_tls_verifies_the_broker(tmp_path, run):
    make_ca(tmp_path)
    b = Broker(tmp_path, tls=(tmp_path / "ca.crt", tmp_path / "server.crt",
                              tmp_path / "server.key")).start()
    sub_port = b.port
    try:
        s = run(f"""
import tls
async def main():
    for ca in ('ca.der', 'other.der'):
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_REQUIRED
        ctx.load_verify_locations(open(ca, 'rb').read())
        c = uumqtt.MQTTClient('dev3', '127.0.0.1', {sub_port}, ssl=ctx,
                              server_hostname='localhost')
        try:
            await c.connect()
            pid = await c.publish('t/tls', 'secure', qos=1)
            out(ca, 'ok', await c.wait_ack(pid))
            await c.disconnect()
        except uumqtt.MQTTError as e:
            out(ca, err(e))
asyncio.run(main())
""")
        assert s.next() == ["ca.der", "ok", True]
        assert s.next() == ["other.der", "ConnectionLost"]
    finally:
        b.stop()


def test_qos1_resent_with_dup_after_reset(broker, run):
    proxy = Proxy(broker.port)
    sub = Subscriber(broker.port)
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
    proxy.blackhole()
    s.poke()
    assert s.next() == ["acked", False, 1]
    proxy.reset()
    assert s.next() == ["lost", "ConnectionLost"]
    assert s.next() == ["acked", True, 0]
    assert sub.wait("t/q1") == "must arrive"
    sub.close()
    proxy.close()

