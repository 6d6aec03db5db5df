"""What the CPU clock the original ran at (80 MHz, config `cpufreq`) costs each appliance's
loop against 240 MHz: the share of device time its MicroPython task is busy, on an ESP32.

Measured on this host and converted with MicroPython's own yardstick, all in one run:
1. each profile's host firmware (epx.sim.fleet: its demo world, online on a local
   mosquitto) beside a firmware that boots the same simulator with an idle loop and no core
   (tests/firmware/heapbase), over a stretch of device time: the firmware process's CPU time
   per device second (the scheduler's count), less the idle one's, is the loop's work on
   this host. The simulator's own Python modules (machine, network, socket, the chip
   models: C or absent on an ESP32) run inside that work, so every figure is an upper
   bound.
2. MicroPython's Pystone (tests/perf_bench/misc_pystone.py of the pinned tree) in the same
   32-bit host firmware, timed by its process's CPU time: this host's pystones per second.
3. The ESP32's pystones per second at 240 MHz, published (ESP32_PYSTONES below); at 80 MHz
   at least a third of it: the interpreter's cycles scale with the clock, waits on the
   flash cache do not.
A loop's busy share at a clock = host CPU seconds per device second x host pystones per
second / the ESP32's pystones per second at that clock.

    python bench/bench_cpufreq.py [seconds]
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from _common import image, online  # noqa: E402
from epx import build, source  # noqa: E402
from epx.sim import net  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from epx.sim.fleet import PROFILES, Fleet  # noqa: E402

# Pystone 1.2 on an ESP32 at 240 MHz (machine.freq(240000000)), MicroPython v1.12: 1602
# pystones/s (github.com/micropython/micropython/issues/6565); the newest published ESP32
# (not -S3) figure found. Later releases run the VM from IRAM (the pinned tree's
# ports/esp32/mpconfigport.h: MICROPY_WRAP_MP_EXECUTE_BYTECODE), which with the rest of
# micropython/micropython#7850 about doubled most perf_bench scores: a v1.25 ESP32 is
# likely faster, and the busy shares below stay upper bounds.
ESP32_PYSTONES = {240: 1602}
ESP32_PYSTONES[80] = ESP32_PYSTONES[240] / 3  # the slowest 80 MHz can be: clock-bound
PASSES = 50000
RUNS = 3


def pystone_cpu_s(exe, passes):
    """CPU seconds of the host firmware `exe` running `passes` Pystone passes (0: the
    interpreter's start and the benchmark's set-up alone)."""
    bench = source.micropython_dir() / "tests" / "perf_bench" / "misc_pystone.py"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "probe.py").write_text(bench.read_text() + f"\nSetup()\nProc0({passes})\n")
        proc = subprocess.Popen([str(exe), "-c", "import sys;sys.path[:]=[''];import probe"],
                                cwd=tmp)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"pystone in {exe}: exit {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def host_pystones():
    """This host's pystones per CPU second in the host firmware: best of RUNS."""
    exe, _ = build.build_unix("bare")
    best = min(pystone_cpu_s(exe, PASSES) - pystone_cpu_s(exe, 0) for _ in range(RUNS))
    return PASSES / best


def cpu_s(pid):
    """CPU time of process `pid`'s threads so far, in seconds (the scheduler's nanoseconds:
    /proc/<pid>/stat counts clock ticks, too coarse for a few ms a second)."""
    task = Path(f"/proc/{pid}/task")
    return sum(int((task / t / "schedstat").read_text().split()[0]) for t in os.listdir(task)) / 1e9


def device_s(dev):
    return dev.call("clock.now") / 1e6


def loop_cpu(tmp, broker, seconds):
    """({profile: host CPU seconds per device second}, the idle firmware's), every device
    measured over the same `seconds` of real time once all are online."""
    idle = Device.create(Path(tmp, "idle"), image("heapbase"))
    fleet = Fleet(tmp, PROFILES, len(PROFILES), broker)
    with fleet, idle:  # the idle device starts here
        fleet.start()
        idle.wait_console("heapbase: idle")
        online(broker, {d.name for d in fleet}, 120)
        devices = {fleet.profile[d.name]: d for d in fleet}
        devices[None] = idle
        start = {p: (cpu_s(d.pid), device_s(d)) for p, d in devices.items()}
        time.sleep(seconds)  # the stretch being measured, not a synchronisation
        end = {p: (cpu_s(d.pid), device_s(d)) for p, d in devices.items()}
        resets = fleet.resets()
    if resets or len(idle.boots) > 1:
        sys.exit(f"devices reset during the run: {resets or 'idle'}")
    rate = {p: (end[p][0] - start[p][0]) / (end[p][1] - start[p][1]) for p in devices}
    return rate, rate.pop(None), end[None][1] - start[None][1]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120
    host = host_pystones()
    print(f"host pystone: {host:.0f} pystones per CPU second (host firmware, "
          f"tests/perf_bench/misc_pystone.py, best of {RUNS} runs of {PASSES} passes)")
    print(f"esp32 pystone: {ESP32_PYSTONES[240]} per second at 240 MHz (published), at least "
          f"{ESP32_PYSTONES[80]:.0f} at 80 MHz (a third); host / esp32 at 240 MHz: "
          f"{host / ESP32_PYSTONES[240]:.0f}")
    with tempfile.TemporaryDirectory() as tmp, net.Broker() as broker:
        rate, idle, measured = loop_cpu(tmp, broker, seconds)
    print(f"measured over {measured:.0f} device seconds; idle simulator (heapbase): "
          f"{idle * 1000:.2f} ms host CPU per device second")
    for profile, r in rate.items():
        work = max(r - idle, 0.0)
        busy = {mhz: work * host / ESP32_PYSTONES[mhz] for mhz in (240, 80)}
        print(f"loop {profile}: {work * 1000:.2f} ms host CPU per device second over the idle "
              f"simulator; busy on an ESP32 at most {busy[240]:.1%} at 240 MHz, {busy[80]:.1%} "
              f"at 80 MHz (+{busy[80] - busy[240]:.1%} of device time)")


if __name__ == "__main__":
    main()
