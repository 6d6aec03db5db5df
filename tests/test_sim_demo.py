"""`epx sim <profile>` (the README's `make sim`): every profile comes up healthy in its demo
world (tools/epx/sim/worlds.py) and publishes its first values; run as the user runs it, at
20x device speed (tests/simkit.py)."""

import os
import re
import subprocess
import sys

import pytest

from simkit import Output, Sim



@pytest.fixture
def sim(tmp_path):
    made = []

    def make(profile, *args):
        made.append(Sim(profile, tmp_path / profile, *args))
        return made[-1]

    yield make
    for s in made:
        assert s.stop() == 0, s.tail()


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


def test_an_offline_device_shows_its_setup_page_too(sim, tmp_path):
    """A configured device that loses its network (here: a wrong WiFi password sent with
    `epx config set`) opens its access point after apfallback; `epx sim` prints the page's
    address; the change is dropped after configtrial and `epx config` says so (exit 1)."""
    import urllib.request

    from epx.sim import run

    config = tmp_path / "h2o.txt"
    config.write_text(run.default_config("h2o") + "apfallback 1\nconfigtrial 2\n")
    s = sim("h2o", "--config", str(config), "--speed", "4")
    env = dict(re.findall(r"(\w+)=(\S+)", s.line(r"in another shell: .*export (BROKER=\S+ OTA_KEY=\S+)").group(1)))
    s.wait("stat/h2o/LWT", lambda p: p == "Online")
    mark = len(s.lines)
    change = Output([sys.executable, "-m", "epx", "config", "--broker", env["BROKER"], "--name", "h2o",
                     "--key", env["OTA_KEY"], "set", "password", "not-the-passphrase"])
    url = s.line(r"epx sim: setup page: (http://127\.0\.0\.1:\d+/) ", since=mark, timeout=120).group(1)
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.status == 200 and b'name="appassword"' in page.read()  # configured: its password asked
    assert change.proc.wait(300) == 1, change.tail()
    assert change.lines[-2].startswith("epx: h2o: config: candidate dropped, back on the previous config.txt"), change.tail()
    s.line(r"epx sim: the device rebooted: the setup page is gone", since=mark)
