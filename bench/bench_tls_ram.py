"""Free RAM of each profile online over TLS on a simulated ESP32's RAM (ports/unix/variant/
simram.c: the GC heap starts at the port's 56 KB and grows into the RAM that mbedTLS, WiFi,
lwIP's sockets and thread stacks take from too), against a local mosquitto with a TLS-only
listener (a throwaway CA, tests/brokerkit.py) and a local NTP server (TLS checks the
certificate's dates). After its LWT says Online, the median of a few reads a device second
apart (control op `state` after gc.collect()): gc.mem_free() as the port reports it (the
GC heap's free bytes plus IDF's largest free block), the IDF heap's free bytes and largest
block, and what mbedTLS holds now and held at most. The worlds are bench_profile_heap's."""

import datetime
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_profile_heap import online_device  # noqa: E402
from profileworlds import over_tls, worlds  # noqa: E402
from brokerkit import TestCA  # noqa: E402
from epx.sim import net  # noqa: E402
from epx.sim.device import esp32_ram  # noqa: E402
from epx.sim.ntp import NtpServer  # noqa: E402


def tls_device(tmp, broker, ca, ntp, profile, world):
    files = {"config.txt": over_tls(world[1], ntp), "ca.der": ca.ca_der}
    return online_device(tmp, broker, profile, world, files=files, ca_path=ca.ca_path,
                         online_s=90, **esp32_ram())


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
