"""Every command of the README's code blocks, as written, in a bash with the venv
activated as the README says: against `make sim`'s device for the ones that reach a
device (BROKER and OTA_KEY from the line `make sim` prints); the ones that need hardware or
Docker against stand-ins (a dist/ folder of real ESP32 images, an absent serial port in
ESPTOOL_PORT, a docker command without a daemon) and checked to fail in one line. A README
command this test does not know fails it: each new one gets its check here."""

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

import fake_docker
from esptoolkit import dist_folder
from simkit import Output

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ("make", "epx", ".", "git", "export", "esptool", "sha256sum", "mosquitto_sub", "pytest")
# Lines of the code blocks that are a command's output, not a command.
OUTPUT = {
    "access point password (appassword): Xq3v...",
    "config: candidate dropped, back on the previous config.txt: config candidate failed:",
    "no MQTT within 5 min (network: no link after 60 s: wrong password?) (after 300 s)",
}
# Commands not run here, and why.
NOT_RUN = {
    "make test": "the suite itself (this test is part of it)",
    "git clone --depth 1 --branch v1.25.0 https://github.com/micropython/micropython ../micropython":
        "needs GitHub; the CI's Ubuntu stock job runs it",
    "git -C ../micropython submodule update --init --depth 1 lib/mbedtls": "needs GitHub (as above)",
    "export MICROPY_DIR=$(realpath ../micropython)": "the checkout the two lines above make",
}


def code_blocks(text):
    """The lines of the README's indented code blocks (a block follows a blank line)."""
    lines, out, inside = text.splitlines(), [], False
    for i, line in enumerate(lines):
        if line.startswith("    ") and (inside or i == 0 or not lines[i - 1].strip()):
            inside = True
            out.append(line.strip())
        elif line.strip():
            inside = False
    return out


def commands():
    """Each command of the code blocks, without its trailing comment."""
    found = []
    for line in code_blocks((ROOT / "README.md").read_text()):
        if line in OUTPUT:
            continue
        assert line.split()[0] in PROGRAMS, f"README: neither a known command nor known output: {line}"
        found.append(re.sub(r"\s+#\s.*$", "", line))
    return found


def test_the_readme_commands_are_found():
    blocks = code_blocks((ROOT / "README.md").read_text())
    assert OUTPUT <= set(blocks) and set(NOT_RUN) <= set(commands())  # no stale entries
    found = commands()
    assert "make sim" in found and "epx devices --broker \"$BROKER\"" in found
    assert len(found) == len(set(found)) >= 15


@pytest.fixture
def shell(tmp_path):
    """run(command, cwd) in bash after `. .venv/bin/activate`, with the stand-ins on PATH
    and in ESPTOOL_PORT (a serial port that is not there: never a real ESP32 of this host)."""
    bin_dir = tmp_path / "bin"
    fake_docker.install(bin_dir)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_DOCKER_NO_DAEMON="1",
               ESPTOOL_PORT=str(tmp_path / "ttyUSB-none"))
    for inherited in ("VIRTUAL_ENV", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"):  # a user's own shell,
        env.pop(inherited, None)  # not one inside `make test`

    def run(command, cwd=ROOT, timeout=600, **more):
        script = f". {ROOT / '.venv/bin/activate'}\n{command}\n"
        return subprocess.run(["bash", "-c", script], cwd=cwd, env=dict(env, **more),
                              capture_output=True, text=True, timeout=timeout)

    run.env = env
    return run


def fails_in_one_line(done, pattern):
    ours = [l for l in done.stderr.splitlines() if not l.startswith("make: ***")]
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert len(ours) == 1 and re.search(pattern, ours[0]), done.stderr


def test_every_readme_command_as_written(shell, tmp_path):
    todo = [c for c in commands() if c not in NOT_RUN]
    done_with = []

    def check(command):
        assert command in todo, f"not in the README as written: {command}"
        done_with.append(command)
        return command

    # A folder of the user's files: a config for the tank, a build's dist/ (stand-in).
    work = tmp_path / "work"
    work.mkdir()
    config = (ROOT / "profiles" / "h2o" / "config.txt.example").read_text()
    (work / "my-config.txt").write_text(config.replace("MyWiFi", "home").replace(
        "my-wifi-passphrase", "home passphrase"))
    dist_folder(work / "dist" / "h2o-EPX_ESP32", version="h2o-1.4")

    sim = Output(["bash", "-c", f". .venv/bin/activate\n{check('make sim')}\n"], cwd=ROOT,
                 env=shell.env, start_new_session=True)
    try:
        exports = sim.line(r"epx sim: in another shell: .*export (BROKER=\S+ OTA_KEY=\S+)").group(1)
        device = dict(item.split("=", 1) for item in exports.split())
        sim.wait("stat/h2o/CoarseLevelPct", lambda p: p == "40")

        check(". .venv/bin/activate")  # before each command, as the README says
        for command in ("epx unix h2o", "epx unix h2o --board EPX_WT32_ETH01", "epx esp32-check"):
            done = shell(check(command))
            assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
        fails_in_one_line(shell(check("make esp32 PROFILE=h2o BOARD=EPX_ESP32")),
                          r"^epx: docker: no daemon \(Cannot connect to the Docker daemon")

        # flashing: the stand-in build, no ESP32 on the (absent) port
        done = shell(check("epx flash dist/h2o-EPX_ESP32 --config my-config.txt"), cwd=work)
        fails_in_one_line(done, r"^epx: esptool write-flash: Could not open .*ttyUSB-none")
        assert "dist/h2o-EPX_ESP32/firmware.bin: h2o-1.4 for EPX_ESP32" in done.stdout
        done = shell(check("epx provision h2o --config my-config.txt --out provision/"), cwd=work)
        assert done.returncode == 0 and (work / "provision" / "vfs.bin").exists(), done.stderr
        done = shell(check("epx provision --out provision/"), cwd=work)
        assert done.returncode == 0, done.stderr
        assert re.search(r"^access point password \(appassword\): \S{16}$", done.stdout, re.M)

        # operating make sim's device
        def on_device(command, **kw):
            return shell(check(command), **device, **kw)

        done = on_device('epx devices --broker "$BROKER"')
        assert done.returncode == 0, done.stderr
        row = [l.split() for l in done.stdout.splitlines() if l.startswith("h2o ")]
        assert row and row[0][1:4] == ["h2o", row[0][2], "yes"] and row[0][2].startswith("h2o-"), done.stdout
        done = on_device('epx cmd --broker "$BROKER" --name h2o stats')
        assert (done.returncode, done.stdout) == (0, "connlost events net 0 mqtt 0\n"), done.stderr
        mark = len(sim.lines)
        done = on_device('epx cmd --broker "$BROKER" --name h2o --key "$OTA_KEY" reboot')
        assert (done.returncode, done.stdout) == (0, "rebooting\n"), done.stderr
        sim.line(r"^\[mqtt\] stat/h2o/LWT Online", since=mark)
        done = on_device('epx config --broker "$BROKER" --name h2o --key "$OTA_KEY" get')
        assert done.returncode == 0 and "ssid MyWiFi" in done.stdout.splitlines(), done.stdout + done.stderr
        for command in ('epx config --broker "$BROKER" --name h2o --key "$OTA_KEY" set ssid "New Net" '
                        'password "new passphrase"',
                        'epx config --broker "$BROKER" --name h2o --key "$OTA_KEY" unset channel'):
            done = on_device(command)
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stdout.splitlines()[-1] == "config: candidate kept, now config.txt", done.stdout
        sim.line(r"^\[h2o\] .* net: connecting to New Net")
        assert not [l for l in sim.lines if l and ("Traceback" in l or "sntp: no time" in l)]
    finally:
        sim.stop(to=True)  # Ctrl-C: make reports the interrupt; epx sim ends quietly
    assert not [l for l in sim.lines if l and "Traceback" in l], sim.tail()

    # an unconfigured device's setup page, on this machine
    portal = Output(["bash", "-c", f". .venv/bin/activate\n{check('epx sim h2o --config /dev/null')}\n"],
                    cwd=ROOT, env=shell.env, start_new_session=True)
    try:
        url = portal.line(r"epx sim: setup page: (http://127\.0\.0\.1:\d+/) ").group(1)
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b'name="ssid"' in page.read()
    finally:
        assert portal.stop(to=True) == 0, portal.tail()

    assert sorted(done_with) == sorted(todo), set(todo) - set(done_with)
