"""Free RAM of each profile online over TLS on a simulated ESP32's RAM (ports/unix/variant/
simram.c: the GC heap starts at the port's 56 KB and grows into the RAM that mbedTLS, WiFi,
lwIP's sockets and thread stacks take from too), against a local mosquitto with a TLS-only
listener (a throwaway CA, tests/brokerkit.py) and a local NTP server (TLS checks the
certificate's dates). After its LWT says Online, the median of a few reads a device second
apart (control op `state` after gc.collect()): gc.mem_free() as the port reports it (the
GC heap's free bytes plus IDF's largest free block), the IDF heap's free bytes and largest
block, and what mbedTLS holds now and held at most. The worlds are bench_profile_heap's."""

import contextlib
import datetime
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from _common import image  # noqa: E402
from bench_profile_heap import SCALE  # noqa: E402
from profileworlds import over_tls, worlds  # noqa: E402
from brokerkit import MqttWatch, TestCA  # noqa: E402
from epx.sim import net  # noqa: E402
from epx.sim.device import Device, esp32_ram  # noqa: E402
from epx.sim.medium import Medium  # noqa: E402
from epx.sim.ntp import NtpServer  # noqa: E402
import test_scale_device as scale  # noqa: E402


@contextlib.contextmanager
def tls_device(tmp, broker, ca, ntp, profile, world):
    name, config, models, pins = world
    medium = Medium(seed=1) if profile == "scale_manager" else None
    files = {"config.txt": over_tls(config, ntp), "ca.der": ca.ca_der}
    dev = Device.create(Path(tmp, profile), image(profile), files=files, medium=medium,
                        **esp32_ram())
    if medium:
        medium.channels[dev.mac] = scale.CHANNEL
    dev.world["clock_scale"] = SCALE
    dev.world["models"] += models
    dev.world["pins"].update(pins)
    watch = MqttWatch("127.0.0.1", broker.port, (f"stat/{name}/#",), ca_path=ca.ca_path)
    try:
        dev.start()
        watch.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=90, device=dev)
        yield dev
    finally:
        dev.stop()
        watch.close()


def ram_reads(dev, reads=5):
    rows = []
    for _ in range(reads):
        dev.advance(1000)
        s = dev.call("state")
        regions = s["ram"]["regions"]
        rows.append((s["mem_free"], sum(r[1] for r in regions), max(r[2] for r in regions),
                     s["ram"]["tls"], s["ram"]["tls_peak"]))
    return [int(statistics.median(col)) for col in zip(*rows)]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        ca = TestCA(str(Path(tmp, "ca")))
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        with net.Broker(tls=ca) as broker, NtpServer(now) as ntp:
            broker.host = "localhost"
            for profile, world in worlds(broker).items():
                if sys.argv[1:] and profile not in sys.argv[1:]:
                    continue
                with tls_device(tmp, broker, ca, ntp.server, profile, world) as dev:
                    dev.call("clock.scale", factor=1)
                    free, idf, largest, tls, tls_peak = ram_reads(dev)
                print(f"free RAM with TLS up, {profile}: gc.mem_free() {free} bytes; IDF heap "
                      f"free {idf}, largest block {largest}; mbedTLS holds {tls} (at most {tls_peak})")


if __name__ == "__main__":
    main()
