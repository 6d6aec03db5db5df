"""Free heap of each profile running online on a simulated device with an ESP32's heap
(`-X heapsize=110000`, the 32-bit host firmware), against a local mosquitto: after its
MQTT LWT says Online, the median of a few reads of free heap after gc.collect() (control
op `state`), a device second apart. Each figure also states the heap the simulator's own
Python modules take there (C on an ESP32, _common.simulator_heap), and so what a real
ESP32 would have free: at least the sum. The worlds (config, chip models) are the device
tests'. The scale *sensor* is left out: it deep-sleeps between readings, never online."""

import contextlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from _common import heap_reads, image  # noqa: E402
from epx.sim import net  # noqa: E402
from brokerkit import MqttWatch  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from epx.sim.medium import Medium  # noqa: E402

import test_scale_device as scale  # noqa: E402
from profileworlds import worlds  # noqa: E402, F401 (bench_stack's too)

HEAPSIZE = 110000
SCALE = 10  # device seconds per real second until online


@contextlib.contextmanager
def online_device(tmp, broker, profile, world, files=None, ca_path=None, online_s=60,
                  **device_args):
    """A profile's device on a chip-sized heap (or Device.create's `device_args`), online on
    `broker` (bench_stack and bench_tls_ram too: `files` and the broker's `ca_path`)."""
    name, config, models, pins = world
    medium = Medium(seed=1) if profile == "scale_manager" else None
    device_args.setdefault("heapsize", HEAPSIZE)
    dev = Device.create(Path(tmp, profile), image(profile), files=files or {"config.txt": config},
                        medium=medium, **device_args)
    if medium:
        medium.channels[dev.mac] = scale.CHANNEL
    dev.world["clock_scale"] = SCALE
    dev.world["models"] += models
    dev.world["pins"].update(pins)
    watch = MqttWatch("127.0.0.1", broker.port, (f"stat/{name}/#",), ca_path=ca_path)
    try:
        dev.start()
        watch.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=online_s, device=dev)
        yield dev
    finally:
        dev.stop()
        watch.close()


def free_heap(tmp, broker, profile, world):
    with online_device(tmp, broker, profile, world) as dev:
        dev.call("clock.scale", factor=1)
        return heap_reads(dev, profile, "mem_free")


def main():
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        for profile, world in worlds(broker).items():
            free, sim = free_heap(tmp, broker, profile, world)
            print(f"free heap online, {profile}, -X heapsize={HEAPSIZE}: {free} bytes; the simulator's "
                  f"modules take {sim} bytes (C on an ESP32): at least {free + sim} bytes on a device")
    print("scale (the sensor): deep-sleeps between readings, never online: not measured")


if __name__ == "__main__":
    main()
