"""The energy appliance on the simulated board, against a real mosquitto: a PZEM-004T model
on UART2; readings, Home Assistant discovery, an hour of energy with a UART fault in the
middle, faults and recovery, the opt-in read-only ticker."""

import json
import socket

import pytest

from appliance import Appliance
from epx.errors import EpxError
from epx.sim.net import free_port

NAME = "meter"
CONFIG = """\
ssid epx-sim
password secret-passphrase
mqttbroker 127.0.0.1
mqttport {port}
mqttname meter
mqttreboot 86400
"""
SCALE = 20


class Meter(Appliance):
    wait_s = 20

    def __init__(self, dev, watch):
        super().__init__(dev, watch, NAME)

    def call(self, method, *args):
        return self.dev.call("model.call", name="pzem", method=method, args=list(args))

    def idle(self, seconds, factor=30):
        """Let `seconds` of device time pass at a modest pace (MQTT keeps up)."""
        self.dev.call("clock.scale", factor=factor)
        self.until(seconds)
        self.dev.call("clock.scale", factor=SCALE)

    def run(self, seconds, step=5):
        """Device time forward by exactly `seconds`, walked `step` s at a time with the clock
        all but stopped in between: the host's own pace (a busy host) meters nothing extra.
        Each walk runs the loop's meter exchanges (one a second)."""
        self.dev.call("clock.scale", factor=1e-6)
        try:
            for _ in range(int(seconds // step)):
                before = self.call("stats")["requests"]
                self.dev.advance(step * 1000)
                assert self.call("stats")["requests"] > before, "the firmware stopped talking to the meter"
        except EpxError as e:
            raise AssertionError("%s\n%s" % (e, self.dev.output()[-3000:]))
        finally:
            self.dev.call("clock.scale", factor=SCALE)


@pytest.fixture
def energy(device, broker, mqtt_watch):
    def make(config=CONFIG, pzem=None):
        dev = device("energy", config=config.format(port=broker.port), start=False)
        dev.world["clock_scale"] = SCALE
        dev.world["models"].append({"bus": "uart2", "model": "PZEM", "name": "pzem",
                                    "args": dict({"voltage": 230.0, "current": 1.5,
                                                  "power": 300.0, "pf": 0.87,
                                                  "energy": 777}, **(pzem or {}))})
        watch = mqtt_watch(broker, (f"stat/{NAME}/#", f"homeassistant/+/{NAME}/#"))
        dev.start()
        m = Meter(dev, watch)
        m.wait("LWT", "Online", timeout=30)
        return m

    return make


def test_readings_and_discovery(energy):
    m = energy()
    assert m.wait("V") == "230.0"
    assert m.wait("A") == "1.500"
    assert m.wait("W") == "300.0"
    assert m.wait("PowerFactor") == "0.87"
    assert m.wait("Malfunction") == "0"
    assert m.call("stats")["resets"] == 1  # zeroed at the first start, as the original
    assert "ticker" not in m.dev.output()  # no open port unless configured
    classes = {}
    for name in ("V", "A", "W", "PowerFactor", "Energy"):
        doc = json.loads(m.watch.wait_for(f"homeassistant/sensor/{NAME}/{name}/config", lambda p: p,
                                          timeout=20)[1])
        assert doc["state_topic"] == f"stat/{NAME}/{name}"
        classes[name] = (doc.get("device_class"), doc.get("unit_of_measurement"),
                         doc.get("state_class"))
    assert classes == {"V": ("voltage", "V", "measurement"), "A": ("current", "A", "measurement"),
                       "W": ("power", "W", "measurement"),
                       "PowerFactor": ("power_factor", None, "measurement"),
                       "Energy": ("energy", "Wh", "total_increasing")}


def test_an_hour_with_a_uart_fault_in_the_middle(energy):
    m = energy(pzem={"power": 1200.0})
    m.wait("V", "230.0")
    m.run(25 * 60)
    mark = m.mark()
    m.call("set_fault", "silent")
    m.wait("Malfunction", "4", since=mark, timeout=40)
    during = m.mark()
    m.idle(130)  # two checks of the readings
    assert m.seen("V", since=during) == []  # nothing stale is published
    m.run(8 * 60)
    mark = m.mark()
    m.call("set_fault", None)
    m.wait("Malfunction", "0", since=mark, timeout=40)
    m.wait("V", "230.0", since=mark, timeout=40)
    m.run(25 * 60)
    wh = float(m.wait("Wh", timeout=40))
    assert abs(wh - 1200) <= 5, wh  # the fault lost no energy
    # Energy, every minute: the closed window and what the next one counted since (a
    # minute at most of 1200 W), never going down.
    closed = next(i for i, (t, _, _) in enumerate(m.watch.messages) if t == f"stat/{NAME}/Wh")
    after = int(m.wait("Energy", since=closed + 1, timeout=40))
    assert 0 <= after - wh <= 21, (after, wh)
    energies = [int(p) for p in m.seen("Energy")]
    assert energies == sorted(energies)


def test_a_reboot_mid_window_loses_nothing(energy):
    m = energy(pzem={"power": 1200.0})
    m.wait("V", "230.0")
    m.run(30 * 60)
    # The ESP32 restarts; the meter counts on, the window's start is in NVS. The reboot near
    # the device's own pace: it takes host time, which at SCALE would be metered 20 times.
    m.dev.call("clock.scale", factor=2)
    m.dev.power_cycle()
    mark = m.mark()
    m.wait("V", "230.0", since=mark, timeout=60)
    m.dev.call("clock.scale", factor=SCALE)
    m.run(60 * 60)
    wh = float(m.wait("Wh", since=mark, timeout=40))
    assert [b["reset_cause"] for b in m.dev.boots] == [1, 1]  # power-on twice, nothing else
    # the half hour before, the reboot (the meter counted on) and the hour after it
    assert 1795 <= wh <= 1840, wh
    assert m.call("stats")["resets"] == 1  # after the window, not at the restart


def test_garbled_replies_are_read_failures(energy):
    m = energy()
    m.wait("V", "230.0")
    for fault in ("badcrc", "short"):
        mark = m.mark()
        m.call("set_fault", fault)
        m.wait("Malfunction", "4", since=mark)
        mark = m.mark()
        m.call("set_fault", None)
        m.wait("Malfunction", "0", since=mark)


def test_meter_silent_at_start_then_found(energy):
    m = energy(pzem={})
    m.call("set_fault", "silent")
    m.wait("Malfunction", "1", timeout=30)
    assert m.seen("V") == []
    mark = m.mark()
    m.call("set_fault", None)
    m.dev.call("clock.scale", factor=30)  # (no exchanges to pace on: the retry is in 10 min)
    m.wait("Malfunction", "0", since=mark, timeout=60)
    m.wait("V", "230.0", since=mark)


def test_failed_reset_is_retried(energy):
    m = energy(pzem={"power": 600.0})
    m.wait("V")
    m.call("set_fault", "noreset")
    mark = m.mark()
    m.run(61 * 60)
    assert abs(float(m.wait("Wh", since=mark, timeout=40)) - 600) <= 5
    m.wait("Malfunction", "2", since=mark, timeout=40)
    m.run(20 * 60)
    mark = m.mark()
    m.call("set_fault", None)
    m.wait("Malfunction", "0", since=mark, timeout=40)
    m.run(40 * 60)
    assert abs(float(m.wait("Wh", since=mark, timeout=40)) - 600) <= 5


def test_ticker_only_when_configured(energy, broker):
    port = free_port()
    m = energy(config=CONFIG + f"ticker {port}\n")
    m.wait("V", "230.0")
    m.dev.wait_console(f"energy: ticker on port {port}", timeout=30)
    with socket.create_connection(m.dev.server_address(port), timeout=10) as s:
        s.sendall(b"reset\n")  # read-only: ignored
        line = s.makefile().readline()
    assert line.startswith("V 230.0 A 1.500 W 300.0 PF 0.87 Hz 50.0 Wh "), line
    assert m.call("stats")["resets"] == 1


def test_today_from_the_date_on_and_yesterday_after_a_midnight(energy, ntp):
    """Energy per local day with SNTP's date (the split at midnight, and nothing without a
    date: tests/firmware/appliances/t_meter.py): Today counts what the meter counted since
    its start; Yesterday waits for a local midnight."""
    m = energy(config=CONFIG + f"ntpserver {ntp.server}\ntzoffset 60\n")
    assert 0 <= int(m.wait("Today")) < 100  # a few Wh at 300 W since the meter was zeroed
    for name, state_class in (("Today", "total_increasing"), ("Yesterday", None)):
        doc = json.loads(m.watch.wait_for(f"homeassistant/sensor/{NAME}/{name}/config", lambda p: p,
                                          timeout=20)[1])
        assert (doc["device_class"], doc["unit_of_measurement"], doc.get("state_class")) == \
            ("energy", "Wh", state_class)
    assert m.seen("Yesterday") == []


def test_clock_hours_in_the_zone_and_energy_every_minute(energy):
    """With the time known, the hour windows close on the local clock's hours (the first
    one short), and Energy moves every minute, not once a window. The time: 00:20 UTC on the
    morning Berlin moves to summer time (01:20 CET), its timezone as ESPHome writes it."""
    from datetime import datetime, timezone

    from epx.sim.ntp import NtpServer

    when = datetime(2026, 3, 29, 0, 20, tzinfo=timezone.utc)
    with NtpServer(when) as ntp:
        m = energy(config=CONFIG + f"ntpserver {ntp.server}\ntimezone CET-1CEST,M3.5.0,M10.5.0/3\n",
                   pzem={"power": 1200.0})
        m.wait("V", "230.0")
        m.dev.wait_console(r"sntp: ", timeout=30)
        mark = m.mark()
        m.run(41 * 60)
        # 00:20:xx to 01:00 UTC (02:00 CET, the change): about 40 min at 1200 W
        wh = float(m.wait("Wh", since=mark, timeout=40))
        assert 780 <= wh <= 800, wh
        energies = [int(p) for p in m.seen("Energy", since=mark)]
        assert energies == sorted(energies) and len(set(energies)) >= 38, energies
        mark = m.mark()
        m.run(60 * 60)
        wh = float(m.wait("Wh", since=mark, timeout=40))
        assert abs(wh - 1200) <= 5, wh  # then whole hours: 03:00 to 04:00 CEST
