"""h2o, in its host firmware: the viper pulse handler (modules/epx/pulse.py) against the
same handler compiled as plain bytecode (ns per pulse at 80 MHz, ratio; goal <= 0.2; a viper body is not
counted by the model, only its call); the highest
pulse rate counted without loss at 80 MHz (device time: the cost model); heap taken by the profile's code frozen vs
loaded from .py files (ratio; goal <= 0.35), the simulator's modules loaded before it (none
of them is counted). The free heap of the running appliance is bench_profile_heap.py's."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from _common import bytecode_twin, simulator_modules  # noqa: E402
from epx import build  # noqa: E402

# Runs in the firmware: the handler counts calls and reads no pin (epx.pulse), so it is
# called directly, EDGES times.
PROBE = r"""
import machine
machine.freq(80000000)  # the appliance's clock: device time is the cost model's
import micropython
import time
from array import array
import epx.pulse as viper
import pulse_bytecode as bytecode

EDGES = 20000


def once(make):
    state = array("i", (0,))
    handler = make(state)
    t = time.ticks_us()
    for _ in range(EDGES):
        handler(None)
    spent = time.ticks_diff(time.ticks_us(), t)
    assert state[0] == EDGES, state
    return spent


def loop():
    t = time.ticks_us()
    for _ in range(EDGES):
        pass
    return time.ticks_diff(time.ticks_us(), t)


base = min(loop() for _ in range(15))
for name, make in (("viper", viper._edge_handler), ("bytecode", bytecode._edge_handler)):
    # ns per pulse (one call: the rising edge), the loop's own cost taken out
    print(name, (min(once(make) for _ in range(15)) - base) * 1000 // EDGES)
"""


# The highest rate counted without loss: pulse trains (the simulator's pin.pulses) of 2 s.
RATES = r"""
import machine
machine.freq(80000000)
import asyncio
import sim.ctl
from machine import Pin
from epx.pulse import PulseCounter

counter = PulseCounter(Pin(14, Pin.IN))


async def train(hz):
    count = int(hz * 2)
    sim.ctl.pulses({"pin": 14, "hz": hz, "count": count})
    got = 0
    quiet = 0
    while quiet < 5:  # until nothing more arrives for 0.5 s after the train
        await asyncio.sleep_ms(100)
        counted = counter.take()
        got += counted
        quiet = quiet + 1 if got >= count or not counted else 0
    return count, got


async def main():
    best = 0
    for hz in (250, 500, 1000, 2000, 4000, 8000, 16000, 32000):
        count, counted = await train(hz)
        if counted != count:
            break
        best = hz
    print("rate", best)


asyncio.run(main())
"""

# Heap taken by importing the profile (everything h2o.service imports), past the platform:
# the ESP32 port's modules (Python here: the simulator) and asyncio are loaded first.
HEAP = r"""
import gc, sys
import asyncio, esp32, machine, network, select, socket, time
gc.collect()
before = gc.mem_alloc()
loaded = set(sys.modules)
import h2o.service
gc.collect()
print("heap", gc.mem_alloc() - before)
print("imported", ",".join(sorted(set(sys.modules) - loaded)) or "-")
"""


def run_in(exe, folder, module, path):
    out = subprocess.run([str(exe), "-c", f"import sys;sys.path[:]={path!r};import {module}"],
                         cwd=folder, capture_output=True, text=True, timeout=300)
    if out.returncode:
        sys.exit(out.stdout + out.stderr)
    return dict(line.split() for line in out.stdout.split("\n") if line)


def as_py_files(folder, exe):
    """The profile's frozen Python as .py files, as if copied to the filesystem."""
    lib = Path(folder, "lib")
    for src, dst in ((ROOT / "modules" / "epx", "epx"), (ROOT / "modules" / "uumqtt", "uumqtt"),
                     (ROOT / "profiles" / "h2o" / "h2o", "h2o")):
        shutil.copytree(src, lib / dst, ignore=shutil.ignore_patterns("manifest.py"))
    shutil.copy(exe.parent / "gen" / "epx" / "version.py", lib / "epx")
    for driver in ("mcp23017", "ssd1306"):
        shutil.copy(ROOT / "modules" / "third" / f"{driver}.py", lib)
    return str(lib)


def main():
    exe, _ = build.build_unix("h2o")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "pulse_bytecode.py").write_text(
            bytecode_twin(ROOT / "modules" / "epx" / "pulse.py", 2))
        Path(tmp, "probe.py").write_text(PROBE)
        out = subprocess.run([str(exe), "-c", "import sys;sys.path[:]=['.frozen',''];import probe"],
                             cwd=tmp, capture_output=True, text=True, timeout=300)
    if out.returncode:
        sys.exit(out.stdout + out.stderr)
    ns = dict(line.split() for line in out.stdout.split("\n") if line)
    viper, bytecode = int(ns["viper"]), int(ns["bytecode"])
    print(f"pulse handler at 80 MHz (cost model): viper {viper} ns/pulse, bytecode {bytecode} ns/pulse, "
          f"ratio {viper / bytecode:.2f} (goal <= 0.2)")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "rates.py").write_text(RATES)
        print(f"pulse rate counted without loss at 80 MHz (2 s trains): "
              f"{run_in(exe, tmp, 'rates', ['', '.frozen'])['rate']} Hz")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "heap.py").write_text(HEAP)
        frozen = run_in(exe, tmp, "heap", ["", ".frozen"])
        loaded = run_in(exe, tmp, "heap", ["", as_py_files(tmp, exe), ".frozen"])
    frozen_heap, loaded_heap = int(frozen["heap"]), int(loaded["heap"])
    print(f"heap after importing h2o.service: frozen {frozen_heap} bytes, from .py files {loaded_heap} "
          f"bytes, ratio {frozen_heap / loaded_heap:.2f} (goal <= 0.35)")
    sim = simulator_modules() & set(frozen["imported"].split(",") + loaded["imported"].split(","))
    print(f"simulator modules among what it imported: {', '.join(sorted(sim)) or 'none'}")


if __name__ == "__main__":
    main()
