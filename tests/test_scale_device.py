"""The scale: a battery sensor (HX711 model) waking from deep sleep and its manager on
WiFi, exchanging readings over the simulated ESP-NOW medium; the manager publishes to a
real mosquitto. Loss, a replayed frame, a foreign MAC, deep-sleep cycles with the clock
advanced by the sleep itself."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest

from appliance import Appliance, settled
from devconfig import colons
from epx.errors import EpxError
from epx.sim import provision
from epx.sim.medium import Medium

NAME = "scale"
CHANNEL = 6
PMK = "00112233445566778899aabbccddeeff"
LMK = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MANAGER_CONFIG = """\
ssid epx-sim
password secret-passphrase
channel {channel}
mqttbroker 127.0.0.1
mqttport {port}
mqttname scale
pmk {pmk}
sensor {sensor}
sensor_lmk {lmk}
"""
SENSOR_CONFIG = """\
channel {channel}
pmk {pmk}
manager {manager}
manager_lmk {lmk}
calibration_a 0.0001
calibration_b -1.5
samples 5
sleep {sleep}
retries {retries}
battery_pin 35
battery_ratio 2
"""


class Scale(Appliance):
    """The manager is the device on MQTT."""

    def __init__(self, manager, sensor, medium, watch):
        super().__init__(manager, watch, NAME)
        self.manager, self.sensor, self.medium = manager, sensor, medium

    def cell(self, method, *args):
        # The sensor sleeps and wakes all the time: a call cut by a reset is made again
        # (the model's state outlives resets, so a repeat does no harm).
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.sensor.call("model.call", name="cell", method=method, args=list(args))
            except EpxError:
                if time.monotonic() > deadline:
                    raise

    def sensor_frames(self):
        with self.medium.lock:
            return [f for f in self.medium.frames if f[0] == self.sensor.mac]


def sensor_models(raw):
    """The sensor's chips: a load cell reading `raw` and its battery (SENSOR_CONFIG's pins)."""
    return [
        {"bus": "pins", "model": "HX711", "name": "cell",
         "args": {"dout": 32, "sck": 33, "value": raw, "powerdown_us": 5000}},
        {"bus": "pins", "model": "Voltage", "name": "battery",
         "args": {"pin": 35, "uv": 1_900_000}},  # a 3.8 V cell through a 1:2 divider
    ]


@pytest.fixture
def scale(device, broker, mqtt_watch, monkeypatch):
    # "scale_manager-<git describe>-dirty" overflows esp_app_desc_t's 31-character version.
    monkeypatch.setenv("EPX_VERSION", "0.1.0-test")

    def make(loss=0.0, raw=1_000_000, sleep=1, retries=3, start_sensor=True, channel=CHANNEL,
             lmk=LMK):
        medium = Medium(loss=loss, seed=7)
        manager = device("scale_manager", start=False, name="manager", medium=medium)
        sensor = device("scale", start=False, name="sensor", medium=medium)
        medium.channels[manager.mac] = CHANNEL
        provision.into_device(manager.folder, {"config.txt": MANAGER_CONFIG.format(
            channel=CHANNEL, port=broker.port, pmk=PMK, sensor=colons(sensor.mac), lmk=LMK)})
        provision.into_device(sensor.folder, {"config.txt": SENSOR_CONFIG.format(
            channel=channel, pmk=PMK, manager=colons(manager.mac), lmk=lmk, sleep=sleep,
            retries=retries)})
        manager.world["clock_scale"] = 10
        sensor.world["models"] += sensor_models(raw)
        watch = mqtt_watch(broker, (f"stat/{NAME}/#", f"homeassistant/+/{NAME}/#"))
        manager.start()
        s = Scale(manager, sensor, medium, watch)
        s.wait("LWT", "Online")
        manager.wait_console("scale: ESP-NOW on channel 6", timeout=30)
        settled(watch, manager, NAME)
        if start_sensor:
            sensor.start()
        return s

    return make


def test_readings_over_espnow_across_deep_sleep_cycles(scale):
    s = scale()
    assert s.wait("Weight") == "98.500"  # 0.0001 * 1000000 - 1.5
    assert s.wait("Malfunction") == "0"
    assert s.wait("Battery") == "3.80"
    s.wait("LastSeen", "0")
    s.cell("set", 2_000_000)
    assert s.wait("Weight", "198.500", timeout=60)
    s.sensor.wait_boot(3, timeout=60)
    first, second = s.sensor.boots[:2]
    assert first["exit"] == 12 and second["reset_cause"] == 4  # deep sleep, DEEPSLEEP_RESET
    assert second["ticks_start_ms"] - first["ticks_start_ms"] >= 60000  # slept its minute
    assert re.search(r"acknowledged in \d+ ms \(send 1\)", s.sensor.output())


def test_sensor_malfunction_is_published_and_weight_withdrawn(scale):
    s = scale()
    s.wait("Weight", "98.500")
    mark = s.watch.mark()
    s.cell("set_stuck")
    s.wait("Malfunction", "1", since=mark, timeout=60)
    assert s.seen("Weight", since=mark) == []
    mark = s.watch.mark()
    s.cell("set_stuck", False)
    s.wait("Malfunction", "0", since=mark, timeout=60)
    s.wait("Weight", "98.500", since=mark)


def test_lost_frames_are_sent_again(scale):
    s = scale(loss=0.5)
    for _ in range(3):
        mark = s.watch.mark()
        s.wait("Weight", "98.500", since=mark, timeout=60)
    out = s.sensor.output()
    assert re.search(r"\(send [234]\)|not acknowledged", out), out


def test_replayed_and_forged_frames_are_refused(scale):
    s = scale()
    s.manager.wait_console(r"scale: #2 ", timeout=60)  # frame 1 is then older than the last
    weight = f"stat/{NAME}/Weight"  # and the reading of frame 2 is at the broker (every one is)
    s.watch.wait_for(weight, lambda p: sum(t == weight for t, _, _ in s.watch.messages) >= 2,
                     timeout=30, device=s.manager)
    frame = s.sensor_frames()[0]
    s.sensor.stop()
    s.sensor.medium = None
    s.medium.leave(s.sensor)
    mark = s.watch.mark()
    msg = frame[2]
    # the recorded frame, replayed (with the sensor's key, as the air carried it)
    s.manager.call("espnow.deliver", peer=s.sensor.mac, msg=msg, key=PMK + LMK)
    # the same from another MAC
    s.manager.call("espnow.deliver", peer="24a160aabbcc", msg=msg)
    # a tampered copy: the weight changed in flight
    raw = bytearray(base64.b64decode(msg))
    raw[8] ^= 1
    s.manager.call("espnow.deliver", peer=s.sensor.mac, msg=base64.b64encode(bytes(raw)).decode(),
                   key=PMK + LMK)
    # the original's unauthenticated format, and a runt
    for bad in (b"\x01\x01Weight\n1.000", b"\x02\x01\x00"):
        s.manager.call("espnow.deliver", peer=s.sensor.mac, msg=base64.b64encode(bad).decode(),
                       key=PMK + LMK)
    for why in ("replayed: counter 1, last accepted", "MAC 24a160aabbcc", "tag", "version 1",
                "length 3"):
        s.manager.wait_console("scale: refused: " + why, timeout=20)
    assert s.wait("Refused", "5", since=mark, timeout=30)
    assert s.seen("Weight", since=mark) == []


def frame(seq, weight):
    """A DATA frame as the sensor sends it (epx.netnow, version 2), tagged with the LMK."""
    body = struct.pack(">BBI", 2, 1, seq) + f"Weight\n{weight}".encode()
    tag = hmac.new(bytes.fromhex(LMK), body, hashlib.sha256).digest()[:8]
    return base64.b64encode(body + tag).decode()


def test_sequence_numbers_across_the_32_bit_field(scale):
    # The frame's field holds 0..2**32-1: each is taken once, nothing older after it, and the
    # manager keeps the number without wrapping it (NVS) across a power cycle.
    s = scale(start_sensor=False)
    numbers = [0, 2**31 - 1, 2**31, 2**32 - 1]
    for i, seq in enumerate(numbers):
        mark = s.watch.mark()
        s.manager.call("espnow.deliver", peer=s.sensor.mac, msg=frame(seq, i), key=PMK + LMK)
        assert s.wait("Weight", f"{i:.3f}", since=mark, timeout=30)
        console = s.manager.console_mark()
        for old in numbers[:i]:
            s.manager.call("espnow.deliver", peer=s.sensor.mac, msg=frame(old, 99), key=PMK + LMK)
            s.manager.wait_console(f"scale: refused: replayed: counter {old}, last accepted {seq}",
                                   since=console, timeout=20)
        assert s.seen("Weight", since=mark) == [f"{i:.3f}"]
    s.manager.power_cycle()
    mark = s.watch.mark()
    s.wait("LWT", "Online", since=mark, timeout=30)
    s.manager.wait_console("scale: ESP-NOW on channel 6", boot=2, timeout=30)
    s.manager.call("espnow.deliver", peer=s.sensor.mac, msg=frame(2**31, 99), key=PMK + LMK)
    s.manager.wait_console(f"replayed: counter {2**31}, last accepted {2**32 - 1}", boot=2, timeout=20)
    assert s.seen("Weight", since=mark) == []


def test_no_manager_bounded_sends_then_sleep(scale):
    s = scale(start_sensor=False, retries=2)
    s.manager.stop()
    s.medium.leave(s.manager)
    s.sensor.start()
    s.sensor.wait_console("not acknowledged after 3 sends", timeout=30)
    s.sensor.wait_boot(2, timeout=30)
    assert s.sensor.boots[0]["exit"] == 12  # asleep all the same
    assert len(s.sensor_frames()) >= 3


def test_power_cycles_keep_numbers_growing(scale):
    s = scale()
    s.wait("Weight", "98.500")
    s.sensor.wait_boot(2, timeout=30)
    s.sensor.power_cycle()  # RTC memory lost: a new epoch from NVS
    mark = s.watch.mark()
    s.cell("set", 3_000_000)
    assert s.wait("Weight", "298.500", since=mark, timeout=60)
    assert "refused" not in s.manager.output()  # nothing refused
    s.manager.power_cycle()  # the manager keeps the last number in NVS
    s.wait("LWT", "Online", since=mark, timeout=30)
    mark = s.watch.mark()
    s.cell("set", 4_000_000)
    assert s.wait("Weight", "398.500", since=mark, timeout=60)


@pytest.mark.parametrize("mismatch", ["channel", "key"])
def test_wrong_channel_or_key_is_never_heard(scale, mismatch):
    if mismatch == "channel":
        s = scale(channel=3, retries=1)
    else:
        s = scale(lmk="ff" * 16, retries=1)
    s.sensor.wait_console("not acknowledged after 2 sends", timeout=30)
    s.sensor.wait_boot(2, timeout=30)
    out = s.manager.output()
    assert "scale: #" not in out and "refused" not in out  # not even seen by the app
    if mismatch == "channel":
        assert {f[3] for f in s.sensor_frames()} == {"channel"}


def test_broken_config_sleeps_in_safe_mode(device, monkeypatch):
    # Safe mode on a sensor without network: back to deep sleep for its period, not awake.
    monkeypatch.setenv("EPX_VERSION", "0.1.0-test")
    broken = SENSOR_CONFIG.format(channel=CHANNEL, pmk=PMK, manager="24:0a:c4:12:34:56", lmk=LMK,
                                  sleep=2, retries=1).replace("samples 5", "samples lots")
    sensor = device("scale", config=broken, name="sensor")
    sensor.wait_console(r"config.txt:\d+: samples: ")
    sensor.wait_console("safe mode: asleep for 2 min")
    second = sensor.wait_boot(2, timeout=30)
    first = sensor.boots[0]
    assert first["exit"] == 12 and second["reset_cause"] == 4  # deep sleep, DEEPSLEEP_RESET
    assert second["ticks_start_ms"] - first["ticks_start_ms"] >= 120000
    sensor.wait_console("safe mode: asleep for 2 min", boot=2)  # still broken: asleep again
    assert "ESP-NOW" not in sensor.output() and "scale: #" not in sensor.output()


def test_a_channel_outside_the_country_is_refused_at_config(scale):
    # ESP-NOW with no access point keeps ESP-IDF's country ("01": channels 1-11): a sensor
    # configured for 12 would never reach its manager. The config check says so; safe
    # mode sleeps its period instead of trying.
    s = scale(channel=12)
    s.sensor.wait_console(r"config.txt:1: channel: channel 12 is not allowed in country 01")
    s.sensor.wait_console(r"safe mode: asleep for 1 min")
    assert s.sensor_frames() == []


def test_the_load_cell_sleeps_with_the_sensor(scale):
    # The HX711 powers down while SCK is high; through deep sleep only a held pad stays
    # high (an unheld one floats and the chip draws its operating current, 1.5 mA: weeks
    # of battery instead of years). Held, it draws its power-down current, and the next
    # wake releases the pad and weighs again.
    s = scale()
    s.wait("Weight", "98.500")
    first = s.sensor.wait_event(lambda e: e["event"] == "sleep", timeout=30)
    mark = s.watch.mark()
    s.wait("Weight", "98.500", since=mark, timeout=60)
    assert first["pads"]["33"] == 1
    assert first["ua"]["cell"] <= 1


def test_a_send_that_times_out_or_finds_no_buffer_is_sent_again(scale):
    # The port's send() raises OSError: ESP_ERR_ESPNOW_NO_MEM after 2 s of full buffers
    # (the frame never left), ETIMEDOUT when the send callback is 100 ms late (the frame
    # may have arrived). Neither loses the reading: the sensor sends again, and a late
    # frame's acknowledgement is taken.
    s = scale(start_sensor=False)
    s.medium.trouble[s.sensor.mac] = ["no_mem", "late"]
    s.sensor.start()
    s.wait("Weight", "98.500", timeout=60)
    s.sensor.wait_console(r"scale: #\d+ acknowledged in \d+ ms \(send 2\)", boot=1)
    out = s.sensor.output(boot=1)
    assert "send 1: (-12391, 'ESP_ERR_ESPNOW_NO_MEM')" in out
    assert "send 2: [Errno 110] ETIMEDOUT" in out
