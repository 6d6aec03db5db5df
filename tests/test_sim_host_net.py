"""The harness's network parts: mosquitto variants, the fault-injecting proxy, mqtt_watch."""

import socket
import ssl
import threading

import paho.mqtt.client as mqtt
import pytest

from epx.sim.run import with_broker


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def test_broker_and_watch(broker, mqtt_watch):
    w = mqtt_watch(broker, topics=("stat/#",))
    w.publish("stat/x/Flow", "1.5")
    w.publish("other/topic", "no")
    w.publish("stat/x/Flow", "2.5")
    assert w.wait_for("stat/+/Flow", lambda p: float(p) > 2)[1] == "2.5"
    with pytest.raises(AssertionError, match=r"(?s)no message on other/#.*stat/x/Flow"):
        w.wait_for("other/#", timeout=0.2)


def test_broker_with_password(broker_auth, mqtt_watch):
    w = mqtt_watch(broker_auth)
    w.publish("a", "b")
    w.wait_for("a")
    refused = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.username_pw_set("epx", "wrong")
    c.on_connect = lambda client, userdata, flags, reason, props: reason.is_failure and refused.set()
    c.connect(broker_auth.host, broker_auth.port)
    c.loop_start()
    try:
        assert refused.wait(5)
    finally:
        c.loop_stop()


def test_broker_with_tls(broker_tls, mqtt_watch):
    w = mqtt_watch(broker_tls)
    w.publish("t", "over tls")
    assert w.wait_for("t")[1] == "over tls"
    ctx = ssl.create_default_context(cafile=broker_tls.ca.ca_path)
    with ctx.wrap_socket(connect(broker_tls.port), server_hostname="localhost") as s:
        assert s.version().startswith("TLS")


def test_broker_restart_keeps_the_port(broker):
    port = broker.port
    broker.restart()
    assert broker.port == port
    connect(port).close()


def test_proxy_pass_and_delay(proxy):
    with connect(proxy.port) as s:
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # CONNECT, empty client id
        assert s.recv(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
    proxy.set("delay", delay_ms=50)
    with connect(proxy.port) as s:
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        assert s.recv(4) == b"\x20\x02\x00\x00"
    proxy.wait_connections(2)


def test_proxy_blackhole(proxy):
    proxy.set("blackhole")
    with connect(proxy.port, timeout=0.3) as s:
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        with pytest.raises(socket.timeout):
            s.recv(4)


def reset_seen(s):
    """True once the peer's RST shows (a read fails with ECONNRESET or sees EOF)."""
    try:
        s.sendall(b"\xc0\x00")  # PINGREQ
        return s.recv(4) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_proxy_drop_and_reset(proxy):
    with connect(proxy.port) as s:
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        assert s.recv(4) == b"\x20\x02\x00\x00"
        proxy.reset()
        assert reset_seen(s)
    proxy.set("drop")
    try:
        with connect(proxy.port) as s:
            assert reset_seen(s)
    except ConnectionResetError:
        pass  # reset before the handshake was even reported
    proxy.wait_connections(2)


def test_sim_config_points_at_the_broker():
    text = with_broker("ssid x\nmqttbroker 192.168.1.2\nunit L\n", "127.0.0.1", 1884)
    assert text == "ssid x\nmqttbroker 127.0.0.1\nunit L\nmqttport 1884\n"
