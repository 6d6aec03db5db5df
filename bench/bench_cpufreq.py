"""What each appliance's loop costs an ESP32 at 80, 160 and 240 MHz (config `cpufreq`), from
the cost model (ports/unix/variant/simcost.c, calibrated by bench_calibrate.py): the share of
device time the VM's task computes, and the longest it computed without waiting (what an
event arriving then waits for the loop: its worst latency).

Each profile's host firmware runs its demo world online on a local mosquitto (as
epx.sim.fleet), all at one frequency, walked the same stretch of device time; the firmware
reports its computation in device time (`clock.busy`: charged work and VM pauses), so the
figures depend on neither the host's speed nor its load. The stretch starts once every
device is online, after discovery.

    python bench/bench_cpufreq.py [device seconds]
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from _common import online  # noqa: E402
from epx.sim import net  # noqa: E402
from epx.sim.fleet import PROFILES, Fleet  # noqa: E402

FREQS = (80, 160, 240)
SETTLE_S = 30  # device seconds after coming online: discovery and first reports done


def measure(tmp, broker, mhz, seconds):
    """{profile: (busy share, longest busy stretch in ms)} at `mhz` over `seconds`."""
    fleet = Fleet(Path(tmp, str(mhz)), PROFILES, len(PROFILES), broker, cpufreq=str(mhz))
    with fleet:
        fleet.start()
        online(broker, {d.name for d in fleet}, 120)
        for dev in fleet:
            dev.advance(SETTLE_S * 1000)
            dev.call("clock.busy")  # from here
        figures = {}
        for dev in fleet:
            dev.advance(seconds * 1000)
            busy = dev.call("clock.busy")
            figures[fleet.profile[dev.name]] = (busy["busy_us"] / busy["since_us"],
                                                busy["longest_us"] / 1000)
        resets = fleet.resets()
    if resets:
        sys.exit(f"devices reset during the run at {mhz} MHz: {resets}")
    return figures


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        runs = {mhz: measure(tmp, broker, mhz, seconds) for mhz in FREQS}
    print(f"each profile's loop over {seconds} device seconds, online: busy share of device "
          f"time, longest stretch computing without a wait")
    for profile in runs[FREQS[0]]:
        cells = ", ".join(f"{mhz} MHz {runs[mhz][profile][0]:.2%} busy, worst {runs[mhz][profile][1]:.0f} ms"
                          for mhz in FREQS)
        print(f"loop {profile}: {cells}")


if __name__ == "__main__":
    main()
