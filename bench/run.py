"""Runs every bench/bench_*.py; each prints its figures as lines `name: value`."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        failed |= subprocess.run([sys.executable, str(script)]).returncode != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
