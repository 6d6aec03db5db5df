#!/usr/bin/env python3
"""The README's two commands as a new user runs them (`make test-stock`): a fresh clone of
this checkout, only the distribution's Python on PATH (no pyenv, no venv), then `make sim`
must publish within a minute of the simulated device starting and `make test` must pass.
Standard library only: it runs before any venv exists."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOCK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PUBLISH_WITHIN = 60  # seconds from `epx sim`'s banner to the device's first reading
FIRST_READING = "[mqtt] stat/h2o/CoarseLevelPct 40"  # the README's tank, 40% full
SETUP_WITHIN = 1800  # seconds for the first run's set-up: venv, MicroPython source, first build


def stock_env():
    """The environment of a fresh login: system PATH, no virtual environment."""
    env = {"PATH": STOCK_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    # The one thing a machine without a Debian archive entry must say: where the source is.
    for name in ("USER", "TMPDIR", "MICROPY_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def distribution_python(env):
    """python3 on the stock PATH: must be the distribution's own (prefix /usr)."""
    exe = shutil.which("python3", path=env["PATH"])
    if exe is None:
        sys.exit("stock: no python3 on the system PATH")
    probe = ("import sys, sysconfig, os; print(sys.version.split()[0], sys.prefix, "
             "os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))")
    version, prefix, managed = subprocess.run([exe, "-c", probe], env=env, capture_output=True, text=True,
                                              check=True).stdout.split()
    if prefix != "/usr":
        sys.exit(f"stock: {exe} is not the distribution's Python (prefix {prefix})")
    print(f"stock: {exe} is Python {version} (prefix {prefix}, externally managed: {managed})", flush=True)
    return exe


class Lines:
    """A child's merged output, echoed with a prefix, and waits on its lines."""

    def __init__(self, proc, prefix):
        self.proc, self.prefix = proc, prefix
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            print(self.prefix + line, end="", flush=True)
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def wait(self, predicate, timeout, start=0):
        """Index of the first line from `start` that predicate accepts; None on timeout or end."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for i in range(start, len(self.lines)):
                    if self.lines[i] is None:
                        return None
                    if predicate(self.lines[i]):
                        return i
                start = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)


def make_sim(clone, env):
    """`make sim` until the device publishes its tank level; seconds to the banner, and from
    the banner to that message."""
    began = time.monotonic()
    proc = subprocess.Popen(["make", "sim"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = Lines(proc, "sim| ")
    try:
        banner = out.wait(lambda l: l.startswith("epx sim: h2o "), SETUP_WITHIN)
        if banner is None:
            sys.exit("stock: `make sim` did not start a device")
        started = time.monotonic()
        first = out.wait(lambda l: l == FIRST_READING, PUBLISH_WITHIN, banner)
        if first is None:
            sys.exit(f"stock: no `{FIRST_READING}` from `make sim` within {PUBLISH_WITHIN} s")
        return started - began, time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sim-only", action="store_true", help="skip `make test`")
    p.add_argument("--keep", action="store_true", help="keep the clone (its folder is printed)")
    args = p.parse_args()
    env = stock_env()
    distribution_python(env)
    work = tempfile.mkdtemp(prefix="epx-stock.")
    clone = os.path.join(work, "epx")
    try:
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        print(f"stock: fresh clone in {clone}", flush=True)
        setup_s, publish_s = make_sim(clone, env)
        print(f"stock: make sim: set-up and first build {setup_s:.0f} s, tank level "
              f"published {publish_s:.1f} s after the device started", flush=True)
        venv_python = os.path.realpath(os.path.join(clone, ".venv", "bin", "python"))
        print(f"stock: the venv's python is {venv_python}", flush=True)
        if args.sim_only:
            return 0
        began = time.monotonic()
        status = subprocess.run(["make", "test"], cwd=clone, env=env).returncode
        print(f"stock: make test exited {status} after {time.monotonic() - began:.0f} s", flush=True)
        return status
    finally:
        if args.keep:
            print(f"stock: kept {clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
