"""h2o: the viper pulse handler (modules/epx/pulse.py) against the same handler compiled as
plain bytecode (ns per pulse, ratio; goal <= 0.2), run inside the h2o host firmware."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from epx import build  # noqa: E402

# Runs in the firmware. The pin's value() is a C method on the ESP32; a bound list.pop
# stands in for it here (the simulated Pin is Python), so both handlers pay the same for it.
PROBE = r"""
import micropython
import time
from array import array
import epx.pulse as viper
import pulse_bytecode as bytecode

EDGES = 20000


def once(make):
    state = array("i", (0, 0, 0, 0, 1))
    handler = make(state)
    levels = [0, 1] * (EDGES // 2)

    class Pin:
        pass

    pin = Pin()
    pin.value = levels.pop
    t = time.ticks_us()
    for _ in range(EDGES):
        handler(pin)
    spent = time.ticks_diff(time.ticks_us(), t)
    assert make is calls_only or state[0] + state[1] == EDGES // 2, state
    return spent


def loop():
    t = time.ticks_us()
    for _ in range(EDGES):
        pass
    return time.ticks_diff(time.ticks_us(), t)


base = min(loop() for _ in range(15))


def calls_only(state):
    # What any handler pays to the firmware: the clock and the pin level (C calls).
    @micropython.viper
    def edge(pin):
        now = int(time.ticks_us())
        level = int(pin.value())

    return edge


for name, make in (("viper", viper._edge_handler), ("bytecode", bytecode._edge_handler),
                   ("calls", calls_only)):
    # ns per pulse (two edges), the loop's own cost taken out
    print(name, (min(once(make) for _ in range(15)) - base) * 2000 // EDGES)
"""


def bytecode_twin(source):
    """pulse.py without the viper decorator; ptr32() becomes the identity."""
    twin, n = re.subn(r"^\s*@micropython\.viper\n", "", source, flags=re.M)
    assert n == 1, "expected one viper function in pulse.py"
    return "def ptr32(x):\n    return x\n\n\n" + twin


def main():
    exe, _ = build.build_unix("h2o")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "pulse_bytecode.py").write_text(
            bytecode_twin((ROOT / "modules" / "epx" / "pulse.py").read_text()))
        Path(tmp, "probe.py").write_text(PROBE)
        out = subprocess.run([str(exe), "-c", "import sys;sys.path[:]=['.frozen',''];import probe"],
                             cwd=tmp, capture_output=True, text=True, timeout=300)
    if out.returncode:
        sys.exit(out.stdout + out.stderr)
    ns = dict(line.split() for line in out.stdout.split("\n") if line)
    viper, bytecode, calls = int(ns["viper"]), int(ns["bytecode"]), int(ns["calls"])
    print(f"pulse handler: viper {viper} ns/pulse, bytecode {bytecode} ns/pulse, "
          f"ratio {viper / bytecode:.2f} (goal <= 0.2); without the ticks_us/pin.value calls "
          f"both make ({calls} ns): ratio {max(0, viper - calls) / (bytecode - calls):.2f}")


if __name__ == "__main__":
    main()
