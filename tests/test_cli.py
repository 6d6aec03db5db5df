"""The `epx` command as a person meets it: every mistake is one line on stderr and a non-zero
exit (no traceback), `epx --version`, each subcommand's help with its choices, defaults and
an example, and the lines long steps print. The device's own refusals (a bad signature,
a dropped config change) are in test_diag_cmd.py and test_remote_config.py."""

import os
import re
import socket
import subprocess
import sys

import pytest

import fake_docker
from epx import build, cli, source, stage


def epx(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "epx", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(done, pattern):
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert re.search(pattern, done.stderr), done.stderr


def test_version():
    done = epx("--version")
    assert done.returncode == 0 and re.fullmatch(r"epx 0\.1\.0 \(\S+\)\n", done.stdout), done


def subcommands():
    parser = cli.parser()
    action, = [a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0]))]
    return action.choices


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_help_lists_choices_defaults_and_an_example(name):
    sub = subcommands()[name]
    text = " ".join(sub.format_help().split())  # argparse wraps lines
    assert re.search(rf"example: epx {re.escape(name)}\b", text), text
    for action in sub._actions:
        if action.dest == "profile":
            assert all(p in text for p in build.profiles()), text
        if action.dest == "board":
            assert all(b in text for b in build.boards()), text
        if action.choices:
            assert all(c in text for c in action.choices), text
        if action.default not in (None, False, "==SUPPRESS==") and action.option_strings:
            assert f"(default: {action.default})" in text, (action.dest, text)


def test_the_help_check_fails_on_a_help_without_defaults(monkeypatch):
    """The check above can fail: a formatter that leaves the defaults out is caught."""
    monkeypatch.setattr(cli.Help, "_get_help_string", lambda self, action: action.help or "")
    with pytest.raises(AssertionError, match="default"):
        test_help_lists_choices_defaults_and_an_example("sim")


@pytest.fixture(scope="module")
def quiet_broker():
    from epx.sim import net

    with net.Broker() as b:
        yield f"{b.host}:{b.port}"


MISTAKES = {
    "speed below zero": (["sim", "h2o", "--speed", "-5"], r"^epx sim: argument --speed: -5 must be above 0 \(see epx sim --help\)$"),
    "heap not a number": (["sim", "h2o", "--heapsize", "lots"], r"argument --heapsize: 'lots' is not a number"),
    "unknown profile": (["sim", "nosuch"], r"^epx: manifests/nosuch.py: unknown profile \(known: .*h2o"),
    "unknown board": (["esp32", "h2o", "--board", "NOSUCH"], r"^epx: boards/NOSUCH: unknown board \(known: EPX_ESP32"),
    "unknown command": (["frobnicate"], r"^epx: argument COMMAND: invalid choice: 'frobnicate'"),
    "broker down (sim)": (["sim", "h2o", "--broker", "127.0.0.1:{closed}"],
                          r"^epx: --broker 127.0.0.1:\d+: Connection refused \(is an MQTT broker running there\?\)$"),
    "broker not HOST:PORT": (["sim", "h2o", "--broker", "127.0.0.1:mqtt"], r"^epx: --broker 127.0.0.1:mqtt: expected HOST\[:PORT\]$"),
    "config file missing": (["sim", "h2o", "--config", "no-such-config.txt"], r"^epx: --config no-such-config.txt: No such file or directory$"),
    "broker down (cmd)": (["cmd", "--broker", "127.0.0.1:{closed}", "--name", "h2o", "stats"],
                          r"^epx: broker 127.0.0.1:\d+: Connection refused$"),
    "unknown device": (["cmd", "--broker", "{broker}", "--name", "nosuch", "--timeout", "2", "stats"],
                       r"^epx: nosuch: no such device on 127.0.0.1:\d+ \(no stat/nosuch/LWT; `epx devices"),
    "timeout zero": (["cmd", "--broker", "{broker}", "--name", "h2o", "--timeout", "0", "stats"], r"argument --timeout: 0 must be above 0"),
    "config set without a value": (["config", "--broker", "{broker}", "--name", "h2o", "--key", "k", "set", "ssid"],
                                   r"^epx: config: expected get, set KEY VALUE"),
    "empty key": (["cmd", "--broker", "{broker}", "--name", "h2o", "--key", "", "reboot"], r"^epx: --key is empty \(is \$OTA_KEY set\?\)$"),
    "no image": (["ota", "no-such.bin", "no-such.txt"], r"^epx: .*no-such"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_one_line_and_a_failure(mistake, quiet_broker):
    argv, pattern = MISTAKES[mistake]
    argv = [a.format(closed=closed_port(), broker=quiet_broker) for a in argv]
    one_line_error(epx(*argv), pattern)


def test_no_docker_daemon_is_one_line(tmp_path):
    fake_docker.install(tmp_path / "bin")
    done = epx("esp32", "h2o", env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
                                    "FAKE_DOCKER_NO_DAEMON": "1"}, timeout=300)
    one_line_error(done, r"^epx: docker: no daemon \(Cannot connect to the Docker daemon at "
                         r"unix:///var/run/docker.sock. Is the docker daemon running\?\); start it")
    assert not (build.DIST / "h2o-EPX_ESP32" / "docker.log").exists()


def test_a_bug_is_one_line_unless_the_traceback_is_asked_for(monkeypatch, capsys):
    def broken(args):
        raise KeyError("oops")

    monkeypatch.setattr(cli, "cmd_profiles", broken)
    assert cli.main(["profiles"]) == 1
    assert capsys.readouterr().err == ("epx profiles: KeyError: 'oops' (a bug in epx; "
                                       "EPX_TRACEBACK=1 shows where)\n")
    monkeypatch.setenv("EPX_TRACEBACK", "1")
    with pytest.raises(KeyError):
        cli.main(["profiles"])


# --- long steps say what they do -------------------------------------------------------

def test_fetch_says_each_stage_and_its_usual_cost(tmp_path, monkeypatch, capsys):
    """`epx fetch` on a machine without the source: a line per stage (apt-get stands in:
    the checksum-pinned tarballs already in deps/debian are what it would download)."""
    import shutil

    monkeypatch.delenv("MICROPY_DIR", raising=False)
    monkeypatch.setattr(source, "DEPS", tmp_path)
    monkeypatch.setattr(source, "TREE", tmp_path / "micropython-1.25.0")
    monkeypatch.setattr(source, "ROOT", tmp_path)
    fetched = source.DEPS.__class__(build.ROOT / "deps" / "debian")

    def apt_source(into, spec):
        for f in fetched.iterdir():
            if f.name.startswith(spec.split("=")[0] + "_"):
                shutil.copy(f, into)
        return into

    monkeypatch.setattr(source, "apt_source", apt_source)
    assert source.fetch() == tmp_path / "micropython-1.25.0"
    lines = capsys.readouterr().out.splitlines()
    assert [re.sub(r" \(.*", "", line) for line in lines] == [
        "epx: fetching MicroPython 1.25.0's source with apt-get source",
        "epx: fetching mbedtls 3.6.x's source for TLS",
        "epx: unpacking into micropython-1.25.0/"]
    assert "usually under a minute" in lines[0]
    assert source.fetch() and capsys.readouterr().out == ""  # fetched: nothing to say


def test_a_first_build_says_it_takes_minutes(tmp_path, monkeypatch, capsys):
    """The stage line of a profile's first host build (the make itself stubbed: the line
    comes before it)."""
    monkeypatch.setattr(build, "BUILD", tmp_path)
    monkeypatch.setattr(build, "_build_unix", lambda profile, board, flags, tree, d: (d / "micropython", []))
    build.build_unix("h2o")
    assert capsys.readouterr().out.startswith(
        "epx: building the h2o host firmware into ")
    (tmp_path / "unix-h2o" / "micropython").write_bytes(b"built")
    build.build_unix("h2o")
    assert capsys.readouterr().out == ""  # built before: make rebuilds what changed, quietly
