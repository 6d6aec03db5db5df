"""Heap used by the epx core after boot: the `bare` profile (the core alone) on a simulated
device, booted until MQTT is up on a local mosquitto, against a firmware that boots the
same simulator with an idle asyncio loop and no core (tests/firmware/heapbase), in the same
run. Heap in use after gc.collect() (control-channel op `state`), each less the heap the
simulator's own Python modules take (C on an ESP32; measured on the same 32-bit firmware,
_common.simulator_heap); the difference is the core's, set against the ~110 KB a
MicroPython ESP32 without PSRAM has free for its heap."""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from _common import heap_reads, image  # noqa: E402
from epx.sim import net  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from brokerkit import MqttWatch  # noqa: E402

ESP32_HEAP = 110 * 1024
START_MS = 12000  # epx.app starts net and MQTT this long after boot


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
        return heap_reads(dev, "bare", "mem_alloc")
    finally:
        dev.stop()
        watch.close()


def baseline(tmp):
    dev = Device.create(Path(tmp, "base"), image("heapbase"))
    try:
        dev.start()
        dev.wait_console("heapbase: idle")
        return heap_reads(dev, "heapbase", "mem_alloc")
    finally:
        dev.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        base, base_sim = baseline(tmp)
        used, used_sim = bare(tmp, broker)
    core = (used - used_sim) - (base - base_sim)
    print(f"bare with MQTT up: {used} bytes in use, of which the simulator's modules {used_sim}")
    print(f"simulator with an idle loop (heapbase): {base} bytes in use, of which the simulator's "
          f"modules {base_sim}")
    print(f"core heap after boot, simulator's modules off both: {core} bytes")
    print(f"core heap / ESP32 free heap ({ESP32_HEAP // 1024} KB): {core / ESP32_HEAP:.2f}")


if __name__ == "__main__":
    main()
