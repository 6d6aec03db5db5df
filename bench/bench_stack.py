"""C-stack high-water of each profile against the ESP32's: the firmware runs in a 16 KB
FreeRTOS task there (ports/esp32/mpconfigport.h: MICROPY_TASK_STACK_SIZE) and stops
recursion 1 KB short of it (MICROPY_STACK_CHECK_MARGIN). Each profile runs online on a
simulated device (bench_profile_heap's worlds, a local mosquitto) for a minute of device
time after its LWT says Online; the scale sensor runs its deep-sleep cycles (ESP-NOW to a
manager). The figure is the product's own depth (simstack.c): the most C stack at any call
the product's code made, callbacks included, from where main.py starts, less the
simulator's frames under a callback and the host's import path buffers (control op
`state`, `stack_own`; the simulator enforces 15360 on it). Host frames (32-bit x86) stand
in for the Xtensa ones."""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_profile_heap import online_device, worlds  # noqa: E402
from bench_scale import scale_pair  # noqa: E402
from epx.sim import net  # noqa: E402

ESP32_LIMIT = 16 * 1024 - 1024
RUN_MS = 60000


def online_high(tmp, broker, profile, world):
    with online_device(tmp, broker, profile, world) as dev:
        for _ in range(RUN_MS // 10000):
            dev.advance(10000)
        return dev.call("state")["stack_own"]


def sensor_high(tmp, broker):
    """The scale sensor's deepest of three wakes (each sleep event carries its wake's)."""
    manager, sensor = scale_pair(tmp, broker, 4)
    try:
        sensor.wait_boot(4, timeout=120)
        sleeps = [e for e in sensor.events if e["event"] == "sleep"]
        return max(e["stack_own"] for e in sleeps)
    finally:
        sensor.stop()
        manager.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        for profile, world in worlds(broker).items():
            report(f"{profile} online {RUN_MS // 1000} s", online_high(tmp, broker, profile, world))
        report("scale sensor, 3 wakes", sensor_high(tmp, broker))


def report(what, own):
    print(f"C stack high-water, {what}: the firmware's own {own} bytes: "
          f"{own / ESP32_LIMIT:.2f} of the ESP32's {ESP32_LIMIT}")


if __name__ == "__main__":
    main()
