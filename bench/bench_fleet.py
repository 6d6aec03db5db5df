"""What one simulated device costs, and how many one host runs: N appliances of mixed
profiles (epx.sim.fleet) on one mosquitto, all online, then their firmware processes
measured over a quiet stretch of real time: resident memory (VmRSS) and CPU time (user +
system, /proc/<pid>/stat) per device, with its share of this process (each device's
supervisor, console and control threads). The host's limit is the lower of its cores over one
device's CPU share and its memory over one device's RSS.

    python bench/bench_fleet.py [devices] [seconds]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from _common import cpu_s, online  # noqa: E402
from epx.sim import net  # noqa: E402
from epx.sim.fleet import PROFILES, Fleet  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        fleet = Fleet(tmp, PROFILES, n, broker)
        with fleet:
            fleet.start()
            online(broker, {d.name for d in fleet}, 60 + 2 * n)
            pids = {d.pid: fleet.profile[d.name] for d in fleet}
            assert None not in pids, "a device is not running"
            cpu0, t0 = {p: cpu_s(p) for p in pids}, time.monotonic()
            host0 = time.process_time()
            time.sleep(seconds)  # the quiet stretch being measured, not a synchronisation
            cpu1, t1 = {p: cpu_s(p) for p in pids}, time.monotonic()
            host1 = time.process_time()
            rss = sum(rss_bytes(p) for p in pids) / n
            harness_rss = rss_bytes(os.getpid()) / n  # an upper bound: Python itself included
            rss += harness_rss
            resets = fleet.resets()
    per_profile = {}
    for p, profile in pids.items():
        per_profile.setdefault(profile, []).append((cpu1[p] - cpu0[p]) / (t1 - t0))
    harness = (host1 - host0) / (t1 - t0) / n  # this process: each device's threads
    share = sum(cpu1[p] - cpu0[p] for p in pids) / (t1 - t0) / n + harness  # of one core
    cores = os.cpu_count()
    mem = os.sysconf("SC_PHYS_PAGES") * PAGE
    print(f"devices {n} ({', '.join(PROFILES)} in turn), measured {t1 - t0:.0f} s online")
    print(f"rss per device {rss / 2**20:.1f} MiB, of which its share of the harness "
          f"{harness_rss / 2**20:.2f} MiB")
    print(f"cpu per device {share * 100:.2f} % of one core, of which its share of the harness "
          f"{harness * 100:.2f} %")
    for profile, shares in per_profile.items():
        print(f"cpu per {profile} device {sum(shares) / len(shares) * 100:.2f} %")
    print(f"host {cores} cores, {mem / 2**30:.1f} GiB: {cores / share:.0f} devices by CPU, "
          f"{mem / rss:.0f} by memory")
    if resets:
        sys.exit(f"devices reset during the run: {resets}")


if __name__ == "__main__":
    main()
