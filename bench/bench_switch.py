"""switch: the viper 74HC165/595 transfer (modules/third/shiftreg.py) against the same code
compiled as plain bytecode (ratio), and the worst loop delay one input poll of a dtwonder8
board causes (the transfer through the simulated GPIO registers and chip models, debounce,
program), both inside the host firmware (tests/firmware/switchunit.py)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from _common import bytecode_twin, run_probe  # noqa: E402
from epx import build  # noqa: E402

# Runs in the firmware. machine.mem32 is C on the ESP32; a dict (C subscripts) stands in
# for it here (the simulated registers are Python), so both variants pay the same for it.
PROBE = r"""
import time
import shiftreg as viper
import shiftreg_bytecode as bytecode

ROUNDS = 2000


def transfers(module):
    c = module.Chain(14, nbits=8, load=32, qh=16, ser=13, latch=15)
    mem = {0x3FF4403C: 0x10000, 0x3FF44040: 0}
    plan = c._plan
    best = None
    for _ in range(7):
        t = time.ticks_us()
        for k in range(ROUNDS):
            module._transfer(mem, plan, k & 0xFF, 8)
        spent = time.ticks_diff(time.ticks_us(), t)
        best = spent if best is None or spent < best else best
    return best * 1000 // ROUNDS


print("viper", transfers(viper))
print("bytecode", transfers(bytecode))

# One poll of a dtwonder8 panel: registers and chip models simulated, inputs changing.
from sim import models
from machine import Pin
from switch import hardware, keep, panel, program
from epx.nvram import NVRAM

models.attach("pins", "HC595", args=dict(ser=13, clk=14, latch=15))
chips = models.attach("pins", "HC165", args=dict(clk=14, load=32, qh=16))
chips.set_inputs(0xFF)
board = hardware.open_board("dtwonder8", 0)
kept = keep.Kept(NVRAM("switch"), "switch", 8)
kept.load()
p = panel.Panel(board, kept, 50, 1000, lambda i, v: None, lambda i, t: None)
p.start(program.compile(program.default_text(8, 8), 8, 8), 0)
import gc
quiet, changed = [], []
POLLS = 3000
for k in range(POLLS):
    if k % 20 == 0:
        chips.set_input((k // 20) % 8, (k // 20) & 8)
    gc.collect()  # a collection is the loop's, not the poll's
    before = p.outputs
    t = time.ticks_us()
    p.poll(k * 15)
    spent = time.ticks_diff(time.ticks_us(), t)
    (changed if p.outputs != before else quiet).append(spent)
quiet.sort()
changed.sort()
print("poll_p99", quiet[len(quiet) * 99 // 100])
print("poll_worst", quiet[-1])
print("poll_median", quiet[len(quiet) // 2])
print("poll_change_median", changed[len(changed) // 2])
"""


def main():
    exe, _ = build.build_unix("switchunit")
    twin = bytecode_twin(ROOT / "modules" / "third" / "shiftreg.py", viper_functions=2)
    r = run_probe(exe, PROBE, {"shiftreg_bytecode": twin})
    viper, bytecode = int(r["viper"]), int(r["bytecode"])
    print(f"shift-register transfer (8 bits in + 8 out): viper {viper} ns, bytecode "
          f"{bytecode} ns, ratio {viper / bytecode:.2f}")
    print(f"loop delay of one dtwonder8 poll (simulated registers and chips): median "
          f"{int(r['poll_median'])} us, 99th percentile {int(r['poll_p99'])} us, worst "
          f"{int(r['poll_worst'])} us (shared machine); with an output change (latch, RTC "
          f"memory and NVS files) median {int(r['poll_change_median'])} us; poll period 15000 us")


if __name__ == "__main__":
    main()
