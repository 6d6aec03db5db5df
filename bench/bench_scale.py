"""scale: reading one HX711 conversion (25 clock pulses, 24 data bits) with the viper
bit-bang of modules/third/hx711.py against the same function as plain bytecode, inside the
scale host firmware. The GPIO registers are a dict here (C-speed loads and stores, as
machine.mem32 is on the ESP32): the figure is the bit-bang's own cost, not the simulator's.
Then a simulated sensor and manager (ESP-NOW medium, mosquitto): the sensor's send to the
manager's acknowledgement in device time (the manager publishes on receipt), median of a
few deep-sleep cycles, and the sensor's awake time per reading. From the same cycles, the
charge one reading costs and what two AA cells last at the default cadence (a reading an
hour), with the load cell's SCK held through deep sleep (the sensor) and floating (as
before it held it), the currents from the datasheets below."""

import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from _common import bytecode_twin, image, run_probe  # noqa: E402
from devconfig import colons  # noqa: E402
from epx import build  # noqa: E402
from epx.sim import net, provision  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from epx.sim.medium import Medium  # noqa: E402

import test_scale_device as scale  # noqa: E402

CYCLES = 5

# Currents, upper figures (ESP32 datasheet v4.x, "Power Consumption by Power Modes"; HX711
# datasheet): CPU at 80 MHz with the radio off (modem-sleep, 20-31 mA); radio on, listening
# (RF receive, 95-100 mA; transmissions are a few ms of 240 mA per reading, left out);
# deep sleep with the RTC timer and memory (10 uA); the HX711 operating (< 1.5 mA) while
# the sensor is awake. While asleep each chip draws what its model reports (sleep_ua).
CPU_MA = 31.0
RADIO_MA = 100.0
DEEP_SLEEP_UA = 10.0
HX711_MA = 1.5
HX711_FLOATING_UA = 1500.0
# Two alkaline AA cells in series: ~2500 mAh each at low drain to 0.8 V (Energizer E91
# datasheet); the ESP32 needs 2.3 V (1.15 V a cell), taken as 2000 mAh usable.
BATTERY_MAH = 2000.0
CADENCE_MIN = 60  # scale/safe.py's `sleep` default

PROBE = r"""
import time
import hx711 as viper
import hx711_bytecode as bytecode

READS = 3000
h = viper.HX711(32, 33)
plan = h._plan
# DOUT (GPIO32: bank 1, bit 0) reads 1 at every bit: 0xFFFFFF, i.e. -1
mem = {0x3FF44008: 0, 0x3FF4400C: 0, 0x3FF44014: 0, 0x3FF44018: 0, 0x3FF4403C: 0,
       0x3FF44040: 1}


def once(shift_in):
    t = time.ticks_us()
    for _ in range(READS):
        v = shift_in(mem, plan, 25)
    spent = time.ticks_diff(time.ticks_us(), t)
    assert v == 0xFFFFFF, v
    return spent


def loop():
    t = time.ticks_us()
    for _ in range(READS):
        pass
    return time.ticks_diff(time.ticks_us(), t)


base = min(loop() for _ in range(9))
for name, fn in (("viper", viper.shift_in), ("bytecode", bytecode.shift_in)):
    print(name, (min(once(fn) for _ in range(9)) - base) * 1000 // READS)
"""


def scale_pair(tmp, broker, max_boots):
    """The manager online and its sensor started, waking every minute (bench_stack too)."""
    medium = Medium(seed=1)
    manager = Device.create(Path(tmp, "manager"), image("scale_manager"), medium=medium)
    sensor = Device.create(Path(tmp, "sensor"), image("scale"), medium=medium, max_boots=max_boots)
    medium.channels[manager.mac] = scale.CHANNEL
    provision.into_device(manager.folder, {"config.txt": scale.MANAGER_CONFIG.format(
        channel=scale.CHANNEL, port=broker.port, pmk=scale.PMK, sensor=colons(sensor.mac),
        lmk=scale.LMK)})
    provision.into_device(sensor.folder, {"config.txt": scale.SENSOR_CONFIG.format(
        channel=scale.CHANNEL, pmk=scale.PMK, manager=colons(manager.mac), lmk=scale.LMK,
        sleep=1, retries=3)})
    manager.world["clock_scale"] = 10
    sensor.world["models"] += scale.sensor_models(12345)
    manager.start()
    manager.wait_console("scale: ESP-NOW on channel", timeout=60)
    sensor.start()
    return manager, sensor


def round_trip():
    """(median send-to-ack ms, median awake ms per reading), device time."""
    os.environ.setdefault("EPX_VERSION", "0.1.0-bench")  # scale_manager-<describe> overflows 31
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        manager, sensor = scale_pair(tmp, broker, CYCLES + 2)
        try:
            sensor.wait_boot(CYCLES + 1, timeout=120)
            acks = [int(m) for m in re.findall(r"acknowledged in (\d+) ms", sensor.output())]
            boots = sensor.boots
            awake = [b["ticks_start_ms"] - a["ticks_start_ms"] - 60000
                     for a, b in zip(boots, boots[1:])]
            sleeps = [e for e in sensor.events if e["event"] == "sleep"]
        finally:
            sensor.stop()
            manager.stop()
    return statistics.median(acks), statistics.median(awake), sleeps


def charge_mc(sleep, cell_sleep_ua, sleep_min=CADENCE_MIN):
    """Millicoulombs of one reading: the wake (CPU, radio, load cell) and the sleep after."""
    awake_ms, radio_ms = sleep["awake_ms"], sleep["radio_ms"]
    wake = (awake_ms - radio_ms) * CPU_MA + radio_ms * RADIO_MA + awake_ms * HX711_MA
    rest = sleep_min * 60000 * (DEEP_SLEEP_UA + cell_sleep_ua) / 1000
    return (wake + rest) / 1000


def battery_days(mc_per_reading, sleep_min=CADENCE_MIN):
    mah_per_day = mc_per_reading / 3600 * (24 * 60 / sleep_min)
    return BATTERY_MAH / mah_per_day


def main():
    exe, _ = build.build_unix("scale")
    twin = bytecode_twin(ROOT / "modules" / "third" / "hx711.py", viper_functions=1)
    ns = run_probe(exe, PROBE, {"hx711_bytecode": twin})
    viper, bytecode = int(ns["viper"]), int(ns["bytecode"])
    ack_ms, awake_ms, sleeps = round_trip()
    print(f"hx711 read: viper {viper} ns, bytecode {bytecode} ns, ratio {viper / bytecode:.2f}; "
          f"ESP-NOW send to manager's ack {ack_ms:.0f} ms, sensor awake {awake_ms:.0f} ms "
          f"per reading (device time)")
    typical = sorted(sleeps, key=lambda e: e["awake_ms"])[len(sleeps) // 2]
    held_ua = max(e["ua"]["cell"] for e in sleeps)
    held = charge_mc(typical, held_ua)
    floating = charge_mc(typical, HX711_FLOATING_UA)
    print(f"sensor per reading: awake {typical['awake_ms']} ms (radio {typical['radio_ms']} ms), "
          f"load cell asleep {held_ua} uA; {held:.0f} mC a reading at one an hour; two AA "
          f"cells ({BATTERY_MAH:.0f} mAh): {battery_days(held) / 365:.1f} years; with SCK "
          f"floating ({HX711_FLOATING_UA:.0f} uA asleep): {floating:.0f} mC, "
          f"{battery_days(floating):.0f} days")


if __name__ == "__main__":
    main()
