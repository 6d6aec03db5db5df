"""scale: reading one HX711 conversion (25 clock pulses, 24 data bits) with the viper
bit-bang of modules/third/hx711.py against the same function as plain bytecode, inside the
scale host firmware. The GPIO registers are a dict here (C-speed loads and stores, as
machine.mem32 is on the ESP32): the figure is the bit-bang's own cost, not the simulator's."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from epx import build  # noqa: E402

PROBE = r"""
import time
import hx711 as viper
import hx711_bytecode as bytecode

READS = 3000
h = viper.HX711(32, 33)
plan = h._plan
# DOUT (GPIO32: bank 1, bit 0) reads 1 at every bit: 0xFFFFFF, i.e. -1
mem = {0x3FF44008: 0, 0x3FF4400C: 0, 0x3FF44014: 0, 0x3FF44018: 0, 0x3FF4403C: 0,
       0x3FF44040: 1}


def once(shift_in):
    t = time.ticks_us()
    for _ in range(READS):
        v = shift_in(mem, plan, 25)
    spent = time.ticks_diff(time.ticks_us(), t)
    assert v == 0xFFFFFF, v
    return spent


def loop():
    t = time.ticks_us()
    for _ in range(READS):
        pass
    return time.ticks_diff(time.ticks_us(), t)


base = min(loop() for _ in range(9))
for name, fn in (("viper", viper.shift_in), ("bytecode", bytecode.shift_in)):
    print(name, (min(once(fn) for _ in range(9)) - base) * 1000 // READS)
"""


def bytecode_twin(source):
    """hx711.py without the viper decorator (annotations are not evaluated)."""
    twin, n = re.subn(r"^\s*@micropython\.viper\n", "", source, flags=re.M)
    assert n == 1, "expected one viper function in hx711.py"
    return twin


def main():
    exe, _ = build.build_unix("scale")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "hx711_bytecode.py").write_text(
            bytecode_twin((ROOT / "modules" / "third" / "hx711.py").read_text()))
        Path(tmp, "probe.py").write_text(PROBE)
        out = subprocess.run([str(exe), "-c", "import sys;sys.path[:]=['.frozen',''];import probe"],
                             cwd=tmp, capture_output=True, text=True, timeout=300,
                             env={"EPX_SIM_DIR": tmp})
    if out.returncode:
        sys.exit(out.stdout + out.stderr)
    ns = dict(line.split() for line in out.stdout.split("\n") if line)
    viper, bytecode = int(ns["viper"]), int(ns["bytecode"])
    print(f"hx711 read: viper {viper} ns, bytecode {bytecode} ns, ratio {viper / bytecode:.2f}")


if __name__ == "__main__":
    main()
