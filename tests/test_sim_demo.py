"""`epx sim <profile>` (the README's `make sim`): every profile comes up healthy in its demo
world (tools/epx/sim/worlds.py) and publishes its first values; run as the user runs it, at
20x device speed."""

import os
import re
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

    def line(self, pattern, timeout=TIMEOUT, since=0):
        """The re.Match of the first output line (from index `since`) matching pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = since
        with self.cv:
            while True:
                for line in self.lines[seen:]:
                    assert line is not None, f"epx sim ended:\n{self.tail()}"
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"no line /{pattern}/ within {timeout} s:\n{self.tail()}"
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


def epx(*args, env=None):
    return subprocess.run([sys.executable, "-m", "epx", *args], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, **(env or {})))


def test_the_demo_device_takes_signed_commands_and_knows_the_time(sim):
    """make sim's device has an ota_key, printed with the line to try it; the demo world
    answers NTP; a reboot and a config change made from outside leave `epx sim` running."""
    s = sim("h2o", "--speed", "1")  # as make sim runs it
    env = dict(re.findall(r"(\w+)=(\S+)", s.line(r"in another shell: .*export (BROKER=\S+ OTA_KEY=\S+)").group(1)))
    assert s.line(r"then try: (.*)").group(1) == 'epx cmd --broker "$BROKER" --name h2o --key "$OTA_KEY" reboot'
    s.line(r"^\[h2o\] \S+ \S+ I sntp: \S+ from 127\.0\.0\.1 ")
    s.wait("stat/h2o/LWT", lambda p: p == "Online")
    mark = len(s.lines)
    done = subprocess.run(["bash", "-c", 'epx cmd --broker "$BROKER" --name h2o --key "$OTA_KEY" reboot'],
                          env=dict(os.environ, **env), capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "rebooting\n", "")
    s.line(r"^\[h2o\] .* epx h2o-\S+: hard reset", since=mark)
    s.line(r"^\[mqtt\] stat/h2o/LWT Online", since=mark)
    # a config change: the device reboots into it and keeps it; `epx config set` says so
    done = epx("config", "--broker", env["BROKER"], "--name", "h2o", "--key", env["OTA_KEY"],
               "set", "apfallback", "7")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "config: candidate kept, now config.txt"
    s.wait("stat/h2o/CoarseLevelPct")
    assert s.proc.poll() is None
    assert not [line for line in s.lines if line and ("sntp: no time" in line or "Traceback" in line)]


def test_the_setup_page_is_reached_from_the_host(sim, tmp_path):
    """An unconfigured device opens its access point: `epx sim` joins it as a phone would
    and prints the page's address on the host."""
    import urllib.request

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    s = sim("bare", "--config", str(empty))
    url = s.line(r"epx sim: setup page: (http://127\.0\.0\.1:\d+/) \(the device's "
                 r"http://192\.168\.4\.1/ as a phone on its access point bare-[0-9a-f]{4} sees it").group(1)
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.status == 200
        assert b'name="ssid"' in page.read()


def test_two_runs_never_share_a_device_folder(sim, tmp_path, monkeypatch):
    """A second run on a folder in use is refused (one line) and the first goes on; without
    --dir each run gets its own folder."""
    first = sim("bare")
    first.wait("stat/bare/LWT", lambda p: p == "Online")
    done = epx("sim", "bare", "--dir", str(tmp_path / "bare"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "another epx sim runs on this device folder" in done.stderr
    first.wait("stat/bare/Uptime")
    assert first.proc.poll() is None and (tmp_path / "bare" / "flash.bin").exists()

    from epx.sim import run

    monkeypatch.setattr(run, "BUILD", tmp_path / "build")
    a, lock_a = run.device_folder("h2o")
    b, lock_b = run.device_folder("h2o")
    assert (a, b) == (str(tmp_path / "build" / "sim" / "h2o"), str(tmp_path / "build" / "sim" / "h2o-2"))
    lock_a.close()
    c, lock_c = run.device_folder("h2o")
    assert c == a
