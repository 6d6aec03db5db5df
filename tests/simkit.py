"""A running `epx sim` (or `make sim`) as the user sees it: its output lines, and waits on
them (tests/test_sim_demo.py, tests/test_readme.py)."""

import re
import signal
import subprocess
import sys
import threading
import time

TIMEOUT = 90  # real seconds: a first build of the profile's firmware included


class Output:
    """A child process's merged output, line by line, with waits on it."""

    def __init__(self, argv, **kw):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, **kw)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # the end
            self.cv.notify_all()

    def tail(self):
        return "\n".join(line for line in self.lines[-40:] if line is not None)

    def line(self, pattern, timeout=TIMEOUT, since=0):
        """The re.Match of the first output line (from index `since`) matching pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = since
        with self.cv:
            while True:
                for line in self.lines[seen:]:
                    assert line is not None, f"the run ended:\n{self.tail()}"
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"no line /{pattern}/ within {timeout} s:\n{self.tail()}"
                self.cv.wait(left)

    def wait(self, topic, predicate=lambda p: True, timeout=TIMEOUT, since=0):
        """The payload of the first `[mqtt] <topic> <payload>` line that predicate accepts."""
        head = f"[mqtt] {topic} "
        deadline = time.monotonic() + timeout
        seen = since
        with self.cv:
            while True:
                for line in self.lines[seen:]:
                    assert line is not None, f"the run ended:\n{self.tail()}"
                    if line.startswith(head) and predicate(line[len(head):]):
                        return line[len(head):]
                seen = len(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"no {topic} within {timeout} s:\n{self.tail()}"
                self.cv.wait(left)

    def stop(self, sig=signal.SIGINT, to=None):
        """Interrupt (Ctrl-C) the process, or its whole group with `to`; its exit status."""
        if to:
            import os

            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


class Sim(Output):
    """`epx sim` in a subprocess, at `speed` device seconds per real second."""

    def __init__(self, profile, folder, *args, speed=20):
        super().__init__([sys.executable, "-m", "epx", "sim", profile, "--speed", str(speed),
                          "--dir", str(folder), *args])
