"""The set-up on a stock machine (ci/setup.sh, the Makefile): the project's Python tools in a
venv made from the distribution's python3, never pip into the externally managed system
Python. The full proof (`make sim` and `make test` in a fresh clone) is `make test-stock`."""

import subprocess
from pathlib import Path

import pytest

from clone import STOCK_PATH, fresh_clone, stock_env

SYSTEM_PYTHON = Path("/usr/bin/python3")


def run(argv, cwd, env, timeout=600):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(1200)  # a venv installed from the package index: minutes on a busy host
def test_setup_makes_the_venv_from_the_distribution_python(tmp_path):
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no distribution python3")
    clone = fresh_clone(tmp_path / "epx")
    env = stock_env()
    done = run(["bash", "ci/setup.sh"], clone, env)
    assert done.returncode == 0, done.stderr
    assert "externally-managed-environment" not in done.stderr

    probe = "import sys, epx; print(sys.prefix, sys.base_prefix, epx.__file__)"
    prefix, base, epx_file = run([str(clone / ".venv" / "bin" / "python"), "-c", probe], "/", env).stdout.split()
    assert Path(prefix) == clone / ".venv"
    assert base == "/usr"  # the distribution's, not a private install
    assert Path(epx_file) == clone / "tools" / "epx" / "__init__.py"
    shown = run([str(clone / ".venv" / "bin" / "epx"), "--help"], "/", env)
    assert shown.returncode == 0 and "sim" in shown.stdout
    # Nothing went into the system Python.
    assert run([str(SYSTEM_PYTHON), "-c", "import epx"], "/", env).returncode != 0

    # Again: nothing to do, and quick about it (no pip: its stamp is untouched).
    stamp = clone / ".venv" / ".epx-pyproject"
    before = stamp.stat().st_mtime_ns
    assert run(["bash", "ci/setup.sh"], clone, env).returncode == 0
    assert stamp.stat().st_mtime_ns == before


def test_make_targets_run_the_venv_tools(tmp_path):
    clone = fresh_clone(tmp_path / "epx")
    for target, command in (("sim", ".venv/bin/epx sim h2o"), ("unix", ".venv/bin/epx unix h2o"),
                            ("esp32", ".venv/bin/epx esp32 h2o"), ("bench", ".venv/bin/python bench/run.py"),
                            ("test", "bash ci/test.sh")):
        lines = run(["make", "-n", target], clone, stock_env()).stdout.splitlines()
        assert command in " ".join(lines), (target, lines)
        assert not any(line.startswith(("epx ", "python3 ")) for line in lines), lines


@pytest.mark.timeout(1200)  # a venv installed from the package index: minutes on a busy host
def test_setup_installs_python3_venv_where_ensurepip_is_missing(tmp_path):
    """Debian and Ubuntu ship venv's ensurepip apart (python3-venv): the set-up asks apt for it
    and, where that does not help, stops with a clear error and no half-made venv."""
    clone = fresh_clone(tmp_path / "epx")
    hidden = tmp_path / "hidden"  # a python3 whose ensurepip is missing, as on a stock Debian
    hidden.mkdir()
    (hidden / "ensurepip.py").write_text("raise ModuleNotFoundError('ensurepip')\n")
    fake = tmp_path / "bin"  # apt-get and sudo that only record what they were asked
    fake.mkdir()
    log = tmp_path / "apt.log"
    for name in ("apt-get", "sudo"):
        (fake / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n'
                                 + ('exec "$@"\n' if name == "sudo" else ""))
        (fake / name).chmod(0o755)
    env = stock_env(PATH=f"{fake}:{STOCK_PATH}", PYTHONPATH=str(hidden))
    done = run(["bash", "ci/setup.sh"], clone, env)
    asked = log.read_text().splitlines()
    assert any(line.startswith("apt-get install") and "python3-venv" in line.split() for line in asked), asked
    assert done.returncode == 1
    assert "has no ensurepip" in done.stderr and "python3-venv" in done.stderr
    assert not (clone / ".venv").exists()

    # The same python3 with its ensurepip: no apt, a venv.
    env.pop("PYTHONPATH")
    log.unlink()
    done = run(["bash", "ci/setup.sh"], clone, env)
    assert done.returncode == 0, done.stderr
    assert not log.exists() or "python3-venv" not in log.read_text()
    assert (clone / ".venv" / "bin" / "epx").exists()


def tarball(path, members):
    import io
    import tarfile

    with tarfile.open(path, "w:xz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if name.endswith("@"):  # a symbolic link to `data`
                info.name, info.type, info.linkname = name[:-1], tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("filters", [True, False], ids=["tarfile-filters", "debian12-python-3.11.2"])
def test_fetch_unpacks_on_every_python_and_refuses_escaping_members(tmp_path, monkeypatch, filters):
    """`epx fetch` unpacks Debian's tarballs with tarfile's "tar" filter, which Debian 12's
    Python 3.11.2 lacks: there the same members are refused, the rest unpacked."""
    import tarfile

    from epx import source
    from epx.errors import EpxError

    if not filters:
        monkeypatch.delattr(tarfile, "tar_filter", raising=False)
    good = tarball(tmp_path / "good.tar.xz", [("micropython-1.25.0/py/mpconfig.h", b"x")])
    with tarfile.open(good) as tar:
        source.extract(tar, tmp_path / "out")
    assert (tmp_path / "out" / "micropython-1.25.0" / "py" / "mpconfig.h").read_bytes() == b"x"
    for bad in ([("../escaped", b"!")],
                [("micropython-1.25.0/up@", str(tmp_path).encode()), ("micropython-1.25.0/up/escaped", b"!")]):
        evil = tarball(tmp_path / "evil.tar.xz", [("micropython-1.25.0/ok", b"x"), *bad])
        with tarfile.open(evil) as tar, pytest.raises(EpxError, match="evil.tar.xz"):
            source.extract(tar, tmp_path / "evil")
        assert not (tmp_path / "escaped").exists()

