"""Clean host build vs incremental rebuild after editing one .py (ratio; goal <= 0.1),
and frozen payload bytes per profile (xtensawin bytecode, what the ESP32 image carries)."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_build(env):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "epx", "unix", "h2o"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as build:
        env = dict(os.environ, EPX_BUILD=build)
        clean = timed_build(env)
        edited = ROOT / "modules" / "epx" / "pulse.py"
        os.utime(edited)
        incremental = timed_build(env)
    print(f"host build clean: {clean:.1f} s")
    print(f"host build after editing one .py: {incremental:.2f} s")
    print(f"incremental/clean ratio: {incremental / clean:.3f} (goal <= 0.1)")
    sys.path.insert(0, str(ROOT / "tools"))
    from epx import build as epx_build
    for profile in epx_build.profiles():
        report = epx_build.esp32_check(profile)
        print(f"frozen payload {profile}: {report['frozen_bytes']} bytes (xtensawin, budget {report['budget']})")


if __name__ == "__main__":
    main()
