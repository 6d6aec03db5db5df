"""epx.net in a simulated device: WiFi wrong password, no access point, a dropped link,
and the reboot after too long without a network."""

from test_mqtt_epx import NAME, START_MS, config


def boot(device, broker, world=None, **extra):
    """A netcheck device whose WiFi world is set before its network starts."""
    text = config(broker, **extra)
    dev = device("netcheck", files={"config.txt": text})
    dev.wait_console("netapp ready")
    if world:
        dev.call("wifi.set", **world)
    dev.advance(START_MS)
    return dev


def test_wrong_password_then_right(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"password": "s3cret"}, password="guessing")
    dev.wait_console(r"net: wrong password; retry in 1 s")
    mark = dev.console_mark()
    dev.call("wifi.set", password="guessing")  # the access point now takes that password
    dev.advance(2000)
    dev.wait_console(r"net: up", since=mark)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)


def test_no_access_point_then_one(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = boot(device, broker, world={"ap": False})
    dev.wait_console(r"net: no access point epx-sim; retry in 1 s")
    dev.advance(2000)
    dev.wait_console(r"net: no access point epx-sim; retry in 2 s")
    mark = dev.console_mark()
    dev.call("wifi.set", ap=True)
    dev.advance(4000)
    dev.wait_console(r"net: up", since=mark)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)


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
    dev.wait_console(r"net: no access point")
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
    dev = boot(device, broker, ssid="(wired)")
    dev.wait_console(r"net: ssid \(wired\): board EPX_ESP32 has no wired LAN")
