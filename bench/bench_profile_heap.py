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

import test_energy_device as energy  # noqa: E402
import test_h2o_device as h2o  # noqa: E402
import test_relay_device as relay  # noqa: E402
import test_scale_device as scale  # noqa: E402
import test_switch_device as switch  # noqa: E402
import test_weather_device as weather  # noqa: E402
from devconfig import config_text  # noqa: E402

HEAPSIZE = 110000
SCALE = 10  # device seconds per real second until online
OLED = {"bus": "i2c0", "model": "SSD1306", "addr": 0x3C, "name": "oled"}


def worlds(broker):
    """profile: (MQTT name, config.txt, chip models, pin levels)."""
    return {
        "bare": ("heap", config_text(broker, "heap", ota_key="bench"), [], {}),
        "energy": (energy.NAME, energy.CONFIG.format(port=broker.port), [
            {"bus": "uart2", "model": "PZEM", "name": "pzem",
             "args": {"voltage": 230.0, "current": 1.5, "power": 300.0, "pf": 0.87, "energy": 777}}], {}),
        "h2o": (h2o.NAME, h2o.CONFIG.format(port=broker.port, capacity=200), [
            {"bus": "i2c0", "model": "MCP23017", "addr": 0x20, "name": "mcp",
             "args": {"inputs": 0, "floating": h2o.wet(2)}}, OLED], {}),
        "relay": (relay.NAME, relay.config(broker), [OLED], {}),
        "switch": (switch.NAME, switch.config(broker, "Direct4"), [],
                   {str(p): v for p, v in switch.released().items()}),
        "weather": (weather.NAME, weather.CONFIG.format(port=broker.port), [
            {"bus": "i2c0", "model": "HDC1080", "addr": 0x40, "name": "hdc",
             "args": {"temperature": 21.5, "humidity": 40.0}},
            {"bus": "i2c0", "model": "BME280", "addr": 0x76, "name": "bme",
             "args": {"temperature": 21.0, "pressure": 1002.3}}, OLED], {}),
        "scale_manager": (scale.NAME, scale.MANAGER_CONFIG.format(
            channel=scale.CHANNEL, port=broker.port, pmk=scale.PMK, sensor="24:0a:c4:12:34:56",
            lmk=scale.LMK), [], {}),
    }


@contextlib.contextmanager
def online_device(tmp, broker, profile, world):
    """A profile's device on a chip-sized heap, online on `broker` (bench_stack too)."""
    name, config, models, pins = world
    medium = Medium(seed=1) if profile == "scale_manager" else None
    dev = Device.create(Path(tmp, profile), image(profile), files={"config.txt": config},
                        heapsize=HEAPSIZE, medium=medium)
    if medium:
        medium.channels[dev.mac] = scale.CHANNEL
    dev.world["clock_scale"] = SCALE
    dev.world["models"] += models
    dev.world["pins"].update(pins)
    watch = MqttWatch("127.0.0.1", broker.port, (f"stat/{name}/#",))
    try:
        dev.start()
        watch.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=60, device=dev)
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
