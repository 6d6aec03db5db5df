"""Device time is the firmware's, not the host's (issue #22): the same firmware, world and
inputs give the same trace (every message the device sent, at its device microsecond, and
every console line with its device time) on an idle host and on one with BUSY busy
processes on its cores. Each run walks one profile's demo world (h2o: pulses, level
sensors) for DEVICE_S device seconds from power-on, device time moving by the walk and the
firmware's computation only (`clock.scale` all but 0), the chip's random numbers from a
fixed seed (EPX_SIM_SEED). The trace is sensitive to the device's own timing: the same
run at another CPU clock gives another one. Slow (a device-hour twice): `make
test-determinism`, its own CI job, not in `make test`."""

import os
import re
import subprocess
import sys

import pytest

from devconfig import config_text
from epx.sim import net, worlds
from soakkit import NAME, PROFILES

pytestmark = pytest.mark.determinism

PROFILE = "h2o"
DEVICE_S = int(os.environ.get("EPX_DETERMINISM_S") or 3600)
BUSY = int(os.environ.get("BUSY") or 8)
STEP_MS = 60_000
CONSOLE_LINE = re.compile(r"^\d+\.\d{3} [IWE] ")  # the device's own log lines
PORT = re.compile(r":\d{4,5}\b")  # each run's broker listens on a port of its own
MAC = "24:0a:c4:12:34:56"  # the same chip each run (a device's MAC names it on MQTT)


def walk(device, name, seconds, cpufreq="80"):
    """(trace lines, console lines) of one run, on a broker of its own (no retained state
    from another run)."""
    with net.Broker() as broker:
        keys = dict(PROFILES[PROFILE].get("keys", {}), cpufreq=cpufreq)
        config = config_text(broker, NAME, **keys)
        dev = device(PROFILE, config=config, start=False, name=name, mac=MAC,
                     env={"EPX_SIM_SEED": "1", "EPX_SIM_TRACE": "trace.txt"})
        worlds.attach(dev, worlds.world(PROFILE, config))
        dev.world["clock_scale"] = 1e-6
        dev.start()
        for _ in range(seconds * 1000 // STEP_MS):
            dev.advance(STEP_MS)
        assert len(dev.boots) == 1, dev.output()[-3000:]
        trace = open(os.path.join(dev.folder, "run", "trace.txt")).read().splitlines()
        console = [PORT.sub(":port", line) for line in dev.output().splitlines()
                   if CONSOLE_LINE.match(line)]
        dev.stop()
    return trace, console


def busy(n):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


@pytest.mark.timeout(3600)
def test_a_device_hour_gives_the_same_trace_beside_busy_processes(device):
    idle = walk(device, "idle", DEVICE_S)
    hogs = busy(BUSY)
    try:
        loaded = walk(device, "loaded", DEVICE_S)
    finally:
        for p in hogs:
            p.kill()
    trace, console = idle
    assert len(trace) > DEVICE_S // 60, "too few messages for a device-hour"  # Uptime a minute
    assert loaded[0] == trace, first_difference(trace, loaded[0])
    assert loaded[1] == console, first_difference(console, loaded[1])
    # The trace shows the device's own timing: at 160 MHz the same run is another one.
    faster = walk(device, "faster", 300, cpufreq="160")
    assert faster[0] != trace[:len(faster[0])]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i}: {x!r} != {y!r}"
    return f"lengths {len(a)} != {len(b)}"
