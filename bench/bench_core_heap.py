"""Heap used by the epx core after boot: the `bare` profile (the core alone) on a simulated
device, booted until MQTT is up on a local mosquitto, against a firmware that boots the
same simulator with an idle asyncio loop and no core (tests/firmware/heapbase), in the same
run. Heap in use after gc.collect() (control-channel op `state`); the difference is the
core's, set against the ~110 KB a MicroPython ESP32 without PSRAM has free for its heap.
The host is 64-bit: its objects and pointers are up to twice an ESP32's, so the ratio is an
upper bound."""

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from epx import build  # noqa: E402
from epx.sim import appimage, net  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from brokerkit import MqttWatch  # noqa: E402

ESP32_HEAP = 110 * 1024
START_MS = 12000  # epx.app starts net and MQTT this long after boot
READS = 5


def image(profile):
    exe, _ = build.build_unix(profile)
    return appimage.build(exe.read_bytes(), build.firmware_version(profile))


def heap_used(dev):
    """Median heap in use after gc.collect() over a few reads, a device second apart."""
    used = []
    for _ in range(READS):
        dev.advance(1000)
        used.append(dev.call("state")["mem_alloc"])
    return int(statistics.median(used))


def bare(tmp, broker):
    config = (f"ssid epx-sim\npassword None\nmqttbroker 127.0.0.1\nmqttport {broker.port}\n"
              f"mqttname heap\nota_key bench\n")
    watch = MqttWatch("127.0.0.1", broker.port, ("stat/heap/#",))
    dev = Device.create(Path(tmp, "bare"), image("bare"), files={"config.txt": config})
    try:
        dev.start()
        dev.wait_console(r"epx .*: power on")
        dev.advance(START_MS)
        watch.wait_for("stat/heap/LWT", lambda p: p == "Online", timeout=30, device=dev)
        watch.wait_for("stat/heap/Uptime", timeout=30, device=dev)
        watch.wait_for("stat/heap/Log", lambda p: p.startswith("boot "), timeout=30, device=dev)
        return heap_used(dev)
    finally:
        dev.stop()
        watch.close()


def baseline(tmp):
    dev = Device.create(Path(tmp, "base"), image("heapbase"))
    try:
        dev.start()
        dev.wait_console("heapbase: idle")
        return heap_used(dev)
    finally:
        dev.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        base = baseline(tmp)
        used = bare(tmp, broker)
    core = used - base
    print(f"core heap after boot: {core} bytes (bare with MQTT up {used}, simulator only {base})")
    print(f"core heap / ESP32 free heap ({ESP32_HEAP // 1024} KB): {core / ESP32_HEAP:.2f} "
          f"(host 64-bit objects: an upper bound)")


if __name__ == "__main__":
    main()
