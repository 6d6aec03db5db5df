"""`epx sim <profile>` (the README's `make sim`): every profile comes up healthy in its demo
world (tools/epx/sim/worlds.py) and publishes its first values; run as the user runs it, at
20x device speed."""

import signal
import subprocess
import sys
import threading
import time

import pytest

SPEED = 20
TIMEOUT = 90  # real seconds: a first build of the profile's firmware included


class Sim:
    """`epx sim` in a subprocess; its output lines, and waits on them."""

    def __init__(self, profile, folder, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "epx", "sim", profile, "--speed", str(SPEED), "--dir",
             str(folder), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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

    def wait(self, topic, predicate=lambda p: True, timeout=TIMEOUT):
        """The payload of the first `[mqtt] <topic> <payload>` line that predicate accepts."""
        head = f"[mqtt] {topic} "
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cv:
            while True:
                for line in self.lines[seen:]:
                    assert line is not None, f"epx sim ended:\n{self.tail()}"
                    if line.startswith(head) and predicate(line[len(head):]):
                        return line[len(head):]
                seen = len(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"no {topic} within {timeout} s:\n{self.tail()}"
                self.cv.wait(left)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            assert self.proc.wait(20) == 0, self.tail()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def sim(tmp_path):
    made = []

    def make(profile, *args):
        made.append(Sim(profile, tmp_path / profile, *args))
        return made[-1]

    yield make
    for s in made:
        s.stop()


def test_h2o_tank_at_40_percent_filling(sim):
    s = sim("h2o")
    assert s.wait("stat/h2o/CoarseLevelPct") == "40"
    assert s.wait("stat/h2o/Malfunction") == "0"
    s.wait("stat/h2o/Flow", lambda p: float(p) > 0)
    assert any(line.startswith("epx sim: watch with: mosquitto_sub -h 127.0.0.1 -p ")
               for line in s.lines)
    assert any(line.startswith("[h2o] ") for line in s.lines)
    assert any(line.startswith("[mqtt] homeassistant/") for line in s.lines)


def test_bare_world_has_no_models(sim):
    s = sim("h2o", "--bare-world")
    assert s.wait("stat/h2o/Malfunction") == "2"  # no MCP23017 answers


# Per profile: (topic, expected payload) pairs that a healthy appliance publishes first.
FIRST = {
    "switch": [("stat/switch/0/State", "0"), ("stat/switch/7/State", "0")],
    "relay": [("stat/relay/0/State", "0"), ("stat/relay/3/State", "0")],
    "energy": [("stat/energy/V", "231.4"), ("stat/energy/Malfunction", "0")],
    "weather": [("stat/weather/Temperature", "21.5"), ("stat/weather/Pressure", "1013.2"),
                ("stat/weather/Malfunction", "0")],
    "scale_manager": [("stat/scale/Weight", "25.000"), ("stat/scale/Malfunction", "0")],
    "bare": [("stat/bare/Uptime", "0")],
}


@pytest.mark.parametrize("profile", sorted(FIRST))
def test_profile_comes_up_healthy(sim, profile):
    s = sim(profile)
    for topic, payload in FIRST[profile]:
        assert s.wait(topic) == payload, topic
