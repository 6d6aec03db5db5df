"""The cost model's calibration (ports/unix/variant/simcost.c): what one counted block of
MicroPython's C costs an ESP32, fitted to the chip's published tests/perf_bench scores.

micropython/micropython#7850 (merged as 549448e8, "esp32: enable some optimisations")
gives run-perfbench.py's scores (1e6 x norm / time in us, N=100 M=100) of a TinyPICO
(ESP32) at 160 MHz before and after the VM moved to IRAM and -O2: the after column (ESP32
below) is the build ports/esp32 makes since. Each benchmark of the pinned tree's
tests/perf_bench runs here in a host firmware with the same N and M, its bm_run counted in
blocks (_simcost.blocks()); its time on the chip is 1e6 x norm / score. A block's cost at
160 MHz is the geometric mean over the benchmarks of time / blocks; the spread of each
benchmark's ratio to that mean is the model's error. The viper_call benchmarks are left
out: native code is not counted (docs/port-parity.md).

    python bench/bench_calibrate.py
"""

import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from epx import build, source  # noqa: E402

N, M = 100, 100
MHZ = 160
# The after column of 549448e8's commit message (scores, higher is faster).
ESP32 = {
    "bm_chaos": 268.08, "bm_fannkuch": 69.31, "bm_fft": 2538.23, "bm_float": 3900.62,
    "bm_hexiom": 32.79, "bm_nqueens": 2372.87, "bm_pidigits": 664.40, "misc_aes": 345.69,
    "misc_mandel": 2121.92, "misc_pystone": 1801.87, "misc_raytrace": 281.78,
}

HARNESS = """
import _simcost
cur_nm = (0, 0)
param = None
for nm, p in bm_params.items():
    if 10 * nm[0] <= 12 * {n} and nm[1] <= {m} and nm > cur_nm:
        cur_nm = nm
        param = p
run, result = bm_setup(param)
b0 = _simcost.blocks()
run()
b1 = _simcost.blocks()
norm, out = result()
print(b1 - b0, norm)
"""


def blocks(exe, name):
    """(blocks, norm) of one benchmark's run in the host firmware `exe`."""
    bench = source.micropython_dir() / "tests" / "perf_bench" / f"{name}.py"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "probe.py").write_text(bench.read_text() + HARNESS.format(n=N, m=M))
        out = subprocess.run([str(exe), "probe.py"], cwd=tmp, capture_output=True, text=True,
                             timeout=600, check=True)
    n, norm = out.stdout.split()[-2:]
    return int(n), int(norm)


def fit(exe):
    """{name: (blocks, chip us)}, the cost of a block at MHZ in ps, and each ratio."""
    rows = {}
    for name, score in ESP32.items():
        n, norm = blocks(exe, name)
        rows[name] = (n, 1e6 * norm / score)
    ps = math.exp(sum(math.log(us * 1e6 / n) for n, us in rows.values()) / len(rows))
    ratios = {name: n * ps / 1e6 / us for name, (n, us) in rows.items()}
    return rows, ps, ratios


def main():
    exe, _ = build.build_unix("bare")
    rows, ps, ratios = fit(exe)
    print(f"{'benchmark':16} {'blocks':>12} {'ESP32 us':>10} {'model/ESP32':>12}")
    for name, (n, us) in rows.items():
        print(f"{name:16} {n:12d} {us:10.0f} {ratios[name]:12.2f}")
    logs = [math.log(r) for r in ratios.values()]
    sd = math.sqrt(sum(x * x for x in logs) / len(logs))
    print(f"ps per block at {MHZ} MHz: {ps:.0f} (at 240 MHz: {ps * MHZ / 240:.0f})")
    print(f"ratio range {min(ratios.values()):.2f}-{max(ratios.values()):.2f}, "
          f"geometric sd x{math.exp(sd):.2f}")
    configured = int(subprocess.run(
        [str(exe), "-c", "import _simcost, machine; machine.freq(240000000); print(_simcost.ps_per_block())"],
        capture_output=True, text=True, check=True).stdout)
    print(f"simcost.c at 240 MHz: {configured} ps per block ({configured / (ps * MHZ / 240):.3f} of the fit)")


if __name__ == "__main__":
    main()
