"""Every profile over TLS on a simulated ESP32's RAM (ports/unix/variant/simram.c: the GC
heap starts at the port's 56 KB and grows into the RAM mbedTLS, WiFi, lwIP's sockets and
thread stacks take from too): it connects, stays up, and when the RAM cannot hold a
handshake it stays reachable, retries and connects once the RAM is back."""

import pytest

from epx.sim.device import esp32_ram
from epx.sim.medium import Medium
from profileworlds import over_tls, worlds
import test_scale_device as scale

ONLINE = ["bare", "energy", "h2o", "relay", "switch", "weather", "scale_manager"]
# extmod/mbedtls/mbedtls_config_common.h: the record buffers mbedtls_ssl_setup allocates
IN_CONTENT_LEN, OUT_CONTENT_LEN = 16384, 4096


@pytest.fixture
def tls_world(device, broker_tls, mqtt_watch, ntp):
    """tls_world(profile) -> (device with the ESP32's RAM, online over TLS; its watch)."""
    def make(profile):
        broker_tls.host = "localhost"  # the name the certificate is for
        name, config, models, pins = worlds(broker_tls)[profile]
        medium = Medium(seed=1) if profile == "scale_manager" else None
        w = mqtt_watch(broker_tls)
        dev = device(profile, files={"config.txt": over_tls(config, ntp.server),
                                     "ca.der": broker_tls.ca.ca_der},
                     start=False, medium=medium, **esp32_ram())
        if medium:
            medium.channels[dev.mac] = scale.CHANNEL
        dev.world["clock_scale"] = 10
        dev.world["models"] += models
        dev.world["pins"].update(pins)
        dev.start()
        w.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=60, device=dev)
        return dev, w, name
    return make


def ram(dev):
    r = dev.call("state")["ram"]
    return r, sum(x[1] for x in r["regions"]), max(x[2] for x in r["regions"])


@pytest.mark.parametrize("profile", ONLINE)
def test_every_profile_connects_over_tls_and_stays_up_on_the_chips_ram(tls_world, profile):
    dev, w, name = tls_world(profile)
    r, free, largest = ram(dev)
    assert r["tls"] >= IN_CONTENT_LEN + OUT_CONTENT_LEN  # the connection's, from the RAM
    dev.wait_console(r"up 120 s: a good boot", timeout=60)  # the device clock runs 10x
    r, later_free, _ = ram(dev)
    assert len(dev.boots) == 1, dev.output()[-2000:]
    assert "mqtt: lost" not in dev.output()
    assert r["tls"] >= IN_CONTENT_LEN + OUT_CONTENT_LEN  # still connected


def test_a_handshake_without_ram_is_retried_until_the_ram_is_back(tls_world, broker_tls,
                                                                   mqtt_watch):
    """The broker goes away; while the device is away, another C user holds the RAM's
    blocks: each attempt fails for RAM (the look-up's watchdog feeder finds no room for its
    stack, "can't create thread", or the handshake none for its buffers, ENOMEM in
    modtls_mbedtls.c: which one depends on what the holder left), the device stays
    reachable and its MQTT retries, and connects once the RAM is back."""
    dev, w, name = tls_world("h2o")
    dev.call("clock.scale", factor=1)
    broker_tls.down()
    dev.advance(2000)
    held = dev.call("ram.hold", bytes=1 << 20, block=4096)
    assert held > 0
    _, free, largest = ram(dev)
    assert largest < IN_CONTENT_LEN
    w.close()
    broker_tls.up()
    w = mqtt_watch(broker_tls)
    dev.advance(20000)
    dev.wait_console(r"mqtt: connect: (ConnectionLost \[Errno 12\] ENOMEM|OSError can't create thread)")
    assert dev.call("state")["uptime_ms"] > 0  # reachable
    dev.call("ram.release")
    dev.call("clock.scale", factor=10)
    w.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=60, device=dev)
    assert len(dev.boots) == 1
