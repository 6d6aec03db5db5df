"""The relay firmware on a simulated board against a real mosquitto: TurnOnWithTimeout,
clamping, invalid payloads, auto-off in device time, and a reboot in the middle of a
timeout (the relay stays on, with about the time it had left)."""

import json
import os
import signal

import pytest

from epx import diag

from appliance import sync
from devconfig import config_text

NAME = "rl"
START_MS = 12000
KEY = "k3y"
PINS = (25, 26, 27, 33)  # active low


def config(broker, **extra):
    return config_text(broker, NAME, **{"watchdog": 0, "ota_key": KEY, **extra})


def topic(kind, name):
    return f"{kind}/{NAME}/{name}"


@pytest.fixture
def relay(device, broker, mqtt_watch):
    def make(app="relay", display=False, **extra):
        w = mqtt_watch(broker)
        dev = device(app, config=config(broker, **extra), start=False)
        if display:
            dev.world["models"].append({"bus": "i2c0", "model": "SSD1306", "addr": 0x3C,
                                        "name": "oled"})
        dev.start()
        dev.wait_console("relay: ")
        dev.advance(START_MS)
        w.wait_for(topic("stat", "LWT"), lambda p: p == "Online", device=dev)
        return dev, w
    return make


def state(w, dev, i, value, since):
    return w.wait_for(topic("stat", f"{i}/State"), lambda p: p == value, since=since, device=dev)


def levels(dev):
    return [dev.call("pin.get", pin=p) for p in PINS]


def turn_on(w, i, payload):
    w.publish(topic("cmnd", f"{i}/TurnOnWithTimeout"), payload)


def advance_fed(w, dev, ms, step=10_000):
    """Advance the clock in steps the loop lives through: a watchdog armed for 25 s never
    sees one jump longer than that (it would bite, rightly, if the loop could not feed)."""
    while ms > 0:
        dev.advance(min(step, ms))
        sync(w, dev, NAME)
        ms -= step


def test_timeout_clamp_restart_and_off(relay):
    dev, w = relay()
    for i in range(4):
        state(w, dev, i, "0", 0)
    assert levels(dev) == [1, 1, 1, 1]
    doc = json.loads(w.wait_for(f"homeassistant/switch/{NAME}/0_State/config", lambda p: p, device=dev)[1])
    assert doc["command_topic"] == topic("cmnd", "0/TurnOnWithTimeout")
    assert (doc["payload_on"], doc["payload_off"], doc["state_on"]) == ("ON", "0", "1")
    m = w.mark()
    turn_on(w, 0, "100000")  # relay 0: at most 600 s
    state(w, dev, 0, "1", m)
    assert levels(dev) == [0, 1, 1, 1]
    dev.advance(590_000)
    turn_on(w, 1, "60")
    state(w, dev, 1, "1", m)
    m = w.mark()
    dev.advance(11_000)  # relay 0 went off at 600 s
    state(w, dev, 0, "0", m)
    turn_on(w, 1, "60")  # restarts relay 1's 60 s
    sync(w, dev, NAME)
    dev.advance(55_000)
    sync(w, dev, NAME)
    assert levels(dev)[1] == 0
    m = w.mark()
    dev.advance(6_000)
    state(w, dev, 1, "0", m)
    sync(w, dev, NAME)
    m = w.mark()
    turn_on(w, 2, "30")
    state(w, dev, 2, "1", m)
    turn_on(w, 2, "-4")  # negative = 0 = off
    state(w, dev, 2, "0", m)
    assert levels(dev) == [1, 1, 1, 1]


def test_invalid_payloads_are_reported_and_ignored(relay):
    dev, w = relay()
    state(w, dev, 3, "0", 0)
    m = w.mark()
    for bad in ("1.5", "abc", "", "1e3", b"\xff"):
        turn_on(w, 3, bad)
    w.wait_for(topic("stat", "Log"), lambda p: "3/TurnOnWithTimeout" in p and "bad command" in p,
               since=m, device=dev)
    turn_on(w, 3, "5")
    state(w, dev, 3, "1", m)
    assert [p for t, p, _ in w.messages[m:] if t == topic("stat", "3/State")] == [b"1"]


def stand_still(dev):
    """Device time from here moves only by walks and what the firmware computes: the test's
    waits on the broker (real time, as long as the host makes them) are not the device's."""
    dev.call("clock.scale", factor=1e-6)


def test_maxima_and_pins_from_config(relay):
    dev, w = relay(relays="4,5,18", maxon="10,20")
    assert "maxon has 2 values for 3 relays" in dev.output()
    stand_still(dev)
    m = w.mark()
    turn_on(w, 1, "3600")
    state(w, dev, 1, "1", m)
    assert dev.call("pin.get", pin=5) == 0
    # The 20 s maximum counts from the command's handling: the chip's work from there to
    # the State going out (well under a second at 80 MHz) is the only device time the
    # test's wait adds.
    dev.advance(19_000)
    assert dev.call("pin.get", pin=5) == 0
    m = w.mark()
    dev.advance(1_000)
    state(w, dev, 1, "0", m)
    assert dev.call("pin.get", pin=5) == 1
    m = w.mark()
    turn_on(w, 2, "25")  # relay 2 has relay 1's maximum
    state(w, dev, 2, "1", m)
    dev.advance(21_000)
    state(w, dev, 2, "0", m)


def signed(w, text, counter):
    w.publish(topic("cmnd", "OTA"), diag.sign(KEY, NAME, text, counter))


def test_reboot_mid_timeout_keeps_the_time_left(relay):
    dev, w = relay()
    m = w.mark()
    turn_on(w, 1, "600")
    state(w, dev, 1, "1", m)
    dev.advance(300_000)  # 5 minutes left
    sync(w, dev, NAME)  # the device has lived through those minutes (time left refreshed)
    before = len(dev.events)
    os.kill(dev._proc.pid, signal.SIGSEGV)  # a crash
    dev.wait_boot(2)
    dev.wait_console("relay: ", boot=2)
    assert "on: [1], restored from RTC memory" in dev.output(2)
    assert levels(dev) == [1, 0, 1, 1]
    assert not [e for e in dev.events[before:] if e.get("event") == "pin" and e["pin"] == 26
                and e["value"] != 0]  # relay 1 never let go
    dev.advance(START_MS)
    m = w.mark()
    dev.advance(270_000)
    sync(w, dev, NAME)
    assert levels(dev)[1] == 0  # still on 4 min 42 s after the crash
    m = w.mark()
    dev.advance(30_000)
    state(w, dev, 1, "0", m)  # off at about the original deadline
    assert levels(dev) == [1, 1, 1, 1]


def test_power_cycle_restores_from_nvs(relay):
    dev, w = relay()
    m = w.mark()
    turn_on(w, 2, "120")
    state(w, dev, 2, "1", m)
    dev.power_cycle()
    dev.wait_boot(2)
    dev.wait_console("relay: ", boot=2)
    assert "on: [2], restored from NVS" in dev.output(2)
    assert levels(dev) == [1, 1, 0, 1]


def test_watchdog_reset_mid_timeout(relay):
    # tests/firmware/rlfault: the relay firmware plus cmnd/<n>/Fault
    dev, w = relay(app="rlfault", watchdog=1)
    m = w.mark()
    turn_on(w, 3, "600")
    state(w, dev, 3, "1", m)
    advance_fed(w, dev, 300_000)
    m = w.mark()
    mark = dev.console_mark()
    w.publish(topic("cmnd", "Fault"), "hang")
    dev.wait_console("fault: hang", since=mark)
    dev.advance(30_000)  # the loop is stuck: the watchdog resets the chip
    assert dev.wait_boot(2, timeout=20)["reset_cause"] == 3
    dev.wait_console("relay: ", boot=2)
    assert "on: [3], restored from RTC memory" in dev.output(2)
    assert levels(dev) == [1, 1, 1, 0]
    dev.advance(START_MS)
    w.wait_for(topic("stat", "LWT"), lambda p: p == "Online", since=m, device=dev)
    m = w.mark()
    advance_fed(w, dev, 270_000)  # 5 minutes were left when the loop hung
    assert levels(dev)[3] == 0
    dev.advance(30_000)
    state(w, dev, 3, "0", m)
    assert levels(dev) == [1, 1, 1, 1]


def test_display_shows_relays_and_time_left(relay):
    dev, w = relay(display=True)
    stand_still(dev)
    m = w.mark()
    turn_on(w, 1, "90")
    state(w, dev, 1, "1", m)
    dev.advance(30_000)
    sync(w, dev, NAME)
    dev.advance(1_000)  # one more display refresh
    sync(w, dev, NAME)
    text = dev.call("model.call", name="oled", method="text")
    assert text[0] == "0 off" and text[2] == "2 off" and text[3] == "3 off"
    # 31 s of the 90 walked exactly; the display refreshed within the last second
    assert text[1].startswith("1 on") and text[1].split()[-1] in ("1:00", "0:59")
    assert text[-1] == "MQTT up" and text[-2].startswith("192.168.")


def test_bad_relay_config_is_safe_mode(relay, device, broker):
    dev = device("relay", config=config(broker, relays="25,34", maxon="5,x"))
    dev.wait_console("safe mode")
    out = dev.output()
    assert "relays: GPIO 34 is input only" in out
    assert "maxon: '5,x' is not a comma-separated list of integers" in out


def test_safe_mode_switches_relays_off(relay):
    # A boot loop: the service never runs again, so nothing would end a relay's time.
    dev, w = relay()
    m = w.mark()
    turn_on(w, 2, "600")
    state(w, dev, 2, "1", m)
    for boot in (2, 3, 4):
        os.kill(dev._proc.pid, signal.SIGSEGV)
        dev.wait_boot(boot)
        if boot < 4:
            dev.wait_console("relay: ", boot=boot)
            assert levels(dev) == [1, 1, 0, 1]
    dev.wait_console("safe mode: relays on GPIO 25, 26, 27, 33 off", boot=4)
    assert "boot loop" in dev.output(4)
    assert levels(dev) == [1, 1, 1, 1]
    assert dev.nvs()["relay"]["2"] == ["i32", 0]


def test_on_time_set_from_home_assistant(relay):
    """Each relay's on time is a number entity (1..its maximum): Home Assistant's switch turns
    the relay on for that long; the value is kept in NVS across a power cycle."""
    dev, w = relay()
    doc = json.loads(w.wait_for(f"homeassistant/number/{NAME}/0_OnTime/config", lambda p: p, device=dev)[1])
    assert doc["command_topic"] == topic("cmnd", "0/OnTime") and doc["state_topic"] == topic("stat", "0/OnTime")
    assert (doc["min"], doc["max"], doc["unit_of_measurement"]) == (1, 600, "s")
    assert w.wait_for(topic("stat", "0/OnTime"), device=dev)[1] == "600"
    m = w.mark()
    for bad in ("0", "601", "soon"):
        w.publish(topic("cmnd", "0/OnTime"), bad)
        w.wait_for(topic("stat", "Log"), lambda p: p.startswith("0/OnTime: bad command %r" % bad), since=m, device=dev)
    w.publish(topic("cmnd", "0/OnTime"), "30")
    w.wait_for(topic("stat", "0/OnTime"), lambda p: p == "30", since=m, device=dev)
    turn_on(w, 0, "ON")
    state(w, dev, 0, "1", m)
    advance_fed(w, dev, 29_000)
    assert levels(dev)[0] == 0  # still on (active low)
    advance_fed(w, dev, 2_000)
    state(w, dev, 0, "0", m)
    m = w.mark()
    dev.power_cycle()
    dev.wait_boot(2)
    dev.advance(START_MS)
    assert w.wait_for(topic("stat", "0/OnTime"), since=m, device=dev)[1] == "30"
