"""mqttbroker with several nodes: two bridged mosquittos stand for a cluster. When the node a
device uses dies, the device moves to the next one within its backoff, publishes its
retained state and discovery there again, and what it had queued at QoS 1 arrives."""

import json

import pytest

from epx.sim import net

from brokerkit import Proxy
from devconfig import config_text

NAME = "nc"
START_MS = 12000  # netcheck starts net and MQTT this long after boot


@pytest.fixture
def nodes():
    """(a, b): mosquitto b bridges every topic with mosquitto a."""
    with net.Broker() as a, net.Broker(bridge=a) as b:
        yield a, b


def start(device, name, brokers):
    dev = device("netcheck", name=name, config=config_text(
        brokers[0], name, mqttbroker=",".join(b.address for b in brokers), mqttport=None,
        mqttkeepalive=30, watchdog=0))
    dev.wait_console("netapp ready")
    dev.advance(START_MS)
    return dev


def test_a_dead_node_gives_way_to_the_next(device, nodes, mqtt_watch):
    a, b = nodes
    into_a = Proxy(a.port).start()  # the device's way to a, cut without a's help
    try:
        on_b = mqtt_watch(b)
        dev = start(device, NAME, [into_a, b])
        # The device is on a: what it says reaches b's subscribers over the bridge.
        on_b.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", timeout=20, device=dev)
        on_b.wait_for(f"stat/{NAME}/Tick", device=dev)
        dev.wait_console(r"mqtt: up, 127\.0\.0\.1:%d" % into_a.port)
        # A single-node device on a alone: the broken case (it has nowhere to go).
        solo = start(device, "solo", [into_a])
        on_b.wait_for("stat/solo/LWT", lambda p: p == "Online", timeout=20, device=solo)
        solo.wait_console(r"mqtt: up")

        m = on_b.mark()
        mark, solo_mark = dev.console_mark(), solo.console_mark()
        into_a.set("blackhole")  # a falls silent (keepalive 30 s: not noticed yet)
        dev.advance(10000)  # the next Tick (QoS 1) goes out towards a and is never acknowledged
        tick = dev.call("clock.now") // 10_000_000
        dev.advance(10000)  # and the one after waits for that acknowledgement
        assert "mqtt: lost" not in dev.output()
        into_a.set("drop")
        a.stop()  # the node dies, and its connections with it

        dev.wait_console(r"mqtt: lost: .*; retry in 500 ms at 127\.0\.0\.1:%d" % b.port,
                         since=mark)
        dev.advance(1000)  # the backoff's first delay and its jitter
        dev.wait_console(r"mqtt: up, 127\.0\.0\.1:%d" % b.port, since=mark, timeout=20)
        # Both Ticks reach b in order: the one a never acknowledged was kept and sent again.
        on_b.wait_for(f"stat/{NAME}/Tick", lambda p: p == str(tick + 1), since=m, device=dev)
        # (A Tick a took before it fell silent may reach b after the mark, through the bridge.)
        ticks = [int(p) for t, p, _ in on_b.messages[m:] if t == f"stat/{NAME}/Tick"]
        assert [t for t in ticks if t >= tick] == [tick, tick + 1], ticks
        on_b.wait_for(f"stat/{NAME}/Value", since=m, device=dev)
        on_b.wait_for(f"homeassistant/sensor/{NAME}/Value/config", since=m, device=dev)

        # What b now holds for a newcomer: the retained state, availability and discovery.
        fresh = mqtt_watch(b)
        assert fresh.wait_for(f"stat/{NAME}/LWT")[1:] == ("Online", True)
        assert fresh.wait_for(f"stat/{NAME}/Volume")[1:] == ("0.0", True)
        _, cfg, retained = fresh.wait_for(f"homeassistant/sensor/{NAME}/Value/config")
        assert retained and json.loads(cfg)["state_topic"] == f"stat/{NAME}/Value"
        on_b.publish(f"cmnd/{NAME}/Set", "5")  # subscribed again on b
        dev.advance(1000)
        on_b.wait_for(f"stat/{NAME}/Value", lambda p: p == "5", since=m, device=dev)
        assert len(dev.boots) == 1

        # The single-node device only ever tries a: its attempts fail, it never reaches b.
        solo.wait_console(r"mqtt: lost", since=solo_mark)
        solo.advance(4000)
        solo.wait_console(r"mqtt: connect: .*; retry in 2000 ms$", since=solo_mark)
        assert not [t for n, _, t in solo.console if n > solo_mark and "mqtt: up" in t]
        assert not [t for t, p, _ in on_b.messages[m:] if t == "stat/solo/LWT" and p == b"Online"]
    finally:
        into_a.stop()
