"""epx.net in a simulated device whose WLAN keeps its status as the ESP32 port does (the
last failure's reason stays until an IP is got): wrong password, no access point, access
point outages of 5 s, 5 min and 2 h, an access point back on another channel, the reboot
after too long without a network, and the wired LAN."""

import pytest

from test_mqtt_epx import NAME, START_MS, config

# A real association with DHCP takes a second or more; a failed attempt (a scan of every
# channel, a handshake timing out) about two (the simulator's scan_ms default).
ASSOCIATION_MS = 1500
# Long outages: the device stays up (no reboot for want of a network or a broker), so what
# brings the link back is net.py's reconnect logic alone.
PATIENT = {"netreboot": 86400, "mqttreboot": 86400}


def boot(device, broker, world=None, wait=True, **extra):
    """A netcheck device whose WiFi world is set before its network starts."""
    text = config(broker, **extra)
    dev = device("netcheck", files={"config.txt": text})
    dev.wait_console("netapp ready")
    dev.call("wifi.set", **{"delay_ms": ASSOCIATION_MS, **(world or {})})
    dev.advance(START_MS)
    if wait:
        dev.wait_console(r"net: connecting to ")
    return dev


def attempt_fails(dev, why):
    """The attempt in progress ends without a link after 60 s, saying why; the next one
    starts after its backoff (at most 1.5 times the delay it names)."""
    mark = dev.console_mark()
    dev.advance(60500)
    delay = int(dev.wait_console(rf"net: no link after 60 s: {why}; retry in (\d+) s",
                                 since=mark).group(1))
    mark = dev.console_mark()
    dev.advance(delay * 1500)
    dev.wait_console(r"net: connecting to ", since=mark)
    return delay


def outage(dev, ms):
    # In steps: the backoff runs its course (however many of them the device handles
    # before the next, the link must come back after).
    for _ in range(ms // 30000):
        dev.advance(30000)
    dev.advance(ms % 30000)


def online(dev, w, since, advance_ms):
    """After `advance_ms` of device time the link and the broker session are back."""
    mark = dev.console_mark()
    dev.advance(advance_ms)
    # Generous real-time bounds: the device works through the jump's timers on a busy host.
    dev.wait_console(r"net: up", since=mark, timeout=60)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=since, timeout=60, device=dev)


def test_wrong_password_then_right(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"password": "s3cret-passphrase"}, password="guessing")
    assert attempt_fails(dev, r"wrong password\?") == 1
    m = w.mark()
    dev.call("wifi.set", password="guessing")  # the access point now takes that password
    online(dev, w, m, 3000)


def test_no_access_point_then_one(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"ap": False})
    assert attempt_fails(dev, "no access point epx-sim") == 1
    m = w.mark()
    dev.call("wifi.set", ap=True)
    online(dev, w, m, 3000)


def test_a_missing_ssid_never_connects(device, broker):
    # The world has one access point, "epx-sim"; the config names another.
    dev = boot(device, broker, ssid="epx-sim-5G")
    assert [attempt_fails(dev, "no access point epx-sim-5G") for _ in range(3)] == [1, 2, 4]
    assert not [text for _, _, text in dev.console if "net: up" in text]


@pytest.mark.parametrize("outage_ms", [5000, 5 * 60000, 2 * 3600000], ids=["5s", "5min", "2h"])
def test_wifi_comes_back_after_an_access_point_outage(device, broker, mqtt_watch, outage_ms):
    w = mqtt_watch(broker)
    dev = boot(device, broker, **PATIENT)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    mark = dev.console_mark()
    dev.call("wifi.set", ap=False)
    dev.advance(1000)
    dev.wait_console(r"net: link lost", since=mark)
    outage(dev, outage_ms)
    m = w.mark()
    dev.call("wifi.set", ap=True)
    # At worst: the longest backoff (60 s) with its jitter (30 s), then an association.
    online(dev, w, m, 95000)


def test_access_point_back_on_another_channel(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"channel": 6}, **PATIENT)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    mark = dev.console_mark()
    dev.call("wifi.set", ap=False)
    dev.advance(1000)
    dev.wait_console(r"net: link lost", since=mark)
    outage(dev, 90000)
    m = w.mark()
    dev.call("wifi.set", ap=True, channel=11)
    online(dev, w, m, 95000)


def test_link_drop_counted(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker)
    w.wait_for(f"stat/{NAME}/Value", device=dev)
    m = w.mark()
    mark = dev.console_mark()
    dev.call("wifi.set", drop=True, delay_ms=3000)  # association takes 3 s again
    dev.advance(1000)
    dev.wait_console(r"net: link lost", since=mark)
    for _ in range(4):
        dev.advance(1000)
    dev.wait_console(r"net: up", since=mark)
    dev.advance(1000)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=m, timeout=20, device=dev)
    w.publish(f"cmnd/{NAME}/OTA", "stats")
    w.wait_for(f"stat/{NAME}/Log", lambda p: p == "connlost events net 1 mqtt 1", since=m,
               device=dev)


def test_no_network_reboots_and_says_why(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"ap": False}, netreboot=60)
    dev.advance(70000)  # one jump: no call may race the reboot
    assert dev.wait_boot(2, timeout=20)["reset_cause"] == 2
    dev.call("wifi.set", ap=True)
    dev.wait_console("netapp ready", boot=2, timeout=20)
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("reboot: no network for 60 s"),
               timeout=20, device=dev)


def test_wired_lan_from_board_pins(tmp_path, device, broker, mqtt_watch):
    from epx import build
    from epx.sim import appimage

    exe, _ = build.build_unix("netwired", board="EPX_WT32_ETH01")
    appimage.write(exe, build.firmware_version("netwired"), tmp_path / "app.bin")
    text = config(broker, ssid="(wired)")
    dev = device((tmp_path / "app.bin").read_bytes(), files={"config.txt": text})
    w = mqtt_watch(broker)
    dev.wait_console("netapp ready")
    dev.advance(START_MS)
    dev.wait_console(r"net: up")
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)


def test_wired_on_a_board_without_lan_says_so(device, broker):
    dev = boot(device, broker, ssid="(wired)", wait=False)
    dev.wait_console(r"net: ssid \(wired\): board EPX_ESP32 has no wired LAN")


def test_a_channel_outside_the_country_is_a_config_error_not_a_crash_loop(
        device, broker, mqtt_watch):
    # ESP-IDF's default country ("01") has channels 1-11: the port refuses 12 with a
    # RuntimeError. The config check names the line; safe mode stays up on the broker.
    w = mqtt_watch(broker)
    dev = device("netcheck", files={"config.txt": config(broker, channel=12)})
    dev.wait_console(r"config.txt:\d+: channel: channel 12 is not allowed in country 01 \(1-11")
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("safe mode: config.txt broken"),
               device=dev)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    assert len(dev.boots) == 1


def test_a_channel_the_radio_refuses_is_only_a_scan_hint(device, broker, mqtt_watch):
    # A German access point on channel 13, and the device told so: the v1.25 port cannot
    # hand the country to ESP-IDF (still "01" until the AP's beacon names Germany), so the
    # hint is refused; the scan finds the AP all the same.
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"channel": 13, "country": "DE"}, country="DE", channel=13)
    dev.wait_console(r"net: the radio refused channel 13 \(Wifi Unknown Error 0x0102\)")
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    assert len(dev.boots) == 1
    assert "not allowed" not in dev.output()


def test_a_resolver_that_never_answers_resets_nothing(device, broker, mqtt_watch):
    # Three DNS servers that answer after lwIP has given each up (7 s): every look-up of a
    # name blocks 21 s, past the 15 s watchdog. MQTT's and SNTP's look-ups say they may
    # block; they fail and are retried, and once the resolver answers the broker is found.
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"dns_ms": 8000, "dns_servers": 3}, wait=False,
               watchdog=1, mqttbroker="localhost", ntpserver="localhost")
    dev.call("clock.scale", factor=10)  # each look-up takes 21 s of device time
    dev.wait_console(r"mqtt: connect: OSError -202; retry in", timeout=60)
    dev.wait_console(r"sntp: no time \(localhost: OSError -202\)", timeout=60)
    m = w.mark()
    dev.call("wifi.set", dns_ms=5)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=m, timeout=90, device=dev)
    assert len(dev.boots) == 1
