"""The build pipeline: pinned source, per-profile host firmware, ESP32 checks, bad input."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from epx import build, partitions, source
from epx.errors import EpxError
from epx.paths import ROOT
from fwcode import run_code

# How the simulator starts a firmware: frozen code first, whatever lies in the folder.
ENTRY = "import sys;sys.path[:]=['.frozen'];"


@pytest.fixture(scope="module")
def h2o_firmware():
    exe, _ = build.build_unix("h2o")
    return exe


def run_firmware(exe, code, cwd):
    result = run_code(exe, ENTRY + code, cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def epx_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "epx", *args], capture_output=True, text=True,
                          timeout=600, **kwargs)


def test_frozen_modules_win_over_stray_files(h2o_firmware, tmp_path):
    for name in ("machine.py", "main.py", "boot.py"):
        (tmp_path / name).write_text("print('STRAY')\n")
    (tmp_path / "epx").mkdir()
    (tmp_path / "epx" / "__init__.py").write_text("print('STRAY')\n")
    out = run_firmware(h2o_firmware, "import epx, machine; print(epx.PROFILE, machine.Pin.__name__)", tmp_path)
    assert "STRAY" not in out
    assert out.split() == ["h2o", "Pin"]


def test_frozen_viper_runs_in_host_firmware(tmp_path):
    exe, _ = build.build_unix("vipercheck")
    out = run_firmware(exe, "import vipersum as v\n"
                       "b = bytes(range(200))\n"
                       "print(v.checksum(b, len(b)) == v.reference(b), v.checksum(b, len(b)))", tmp_path)
    expected = sum(b * (i + 1) for i, b in enumerate(range(200))) & 0xFFFF
    assert out.split() == ["True", str(expected)]


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_firmware_reports_the_version_it_was_built_from(h2o_firmware, tmp_path):
    out = run_firmware(h2o_firmware, "import epx; print(epx.VERSION, epx.PROFILE, epx.BOARD)", tmp_path)
    version, profile, board = out.split()
    assert (profile, board) == ("h2o", "EPX_ESP32")
    # The commit the firmware names is this checkout's HEAD, as git itself abbreviates it.
    head = git(ROOT, "rev-parse", "HEAD")
    named = version.rstrip("+").rsplit("-g", 1)[1]
    assert head.startswith(named) and len(named) >= 4, (version, head)
    assert version.startswith("h2o-") and version.endswith("+") == bool(git(ROOT, "status", "--porcelain", "--untracked-files=no"))


def test_version_follows_git_describe_in_a_tagged_repo(tmp_path, monkeypatch):
    """A repository with a known history: tag v1.2.3, two commits after it, a local change.
    git's documented describe format gives 1.2.3-2-g<7 hex>+; a wrong count, commit or
    missing dirty mark would differ."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for i in range(3):
        (repo / "f").write_text(str(i))
        git(repo, "add", "f")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"c{i}")
        if i == 0:
            git(repo, "tag", "v1.2.3")
    (repo / "f").write_text("changed")
    monkeypatch.setattr(build, "ROOT", repo)
    monkeypatch.delenv("EPX_VERSION", raising=False)
    sha = git(repo, "rev-parse", "HEAD")[:7]
    assert build.firmware_version("h2o") == f"h2o-1.2.3-2-g{sha}+"
    git(repo, "checkout", "-q", "f")
    assert build.firmware_version("h2o") == f"h2o-1.2.3-2-g{sha}"
    git(repo, "checkout", "-q", "v1.2.3")
    assert build.firmware_version("h2o") == "h2o-1.2.3"


def test_change_of_cross_compile_flags_refreezes(tmp_path):
    exe, _ = build.build_unix("h2o")
    frozen = build.unix_build_dir("h2o") / "frozen_mpy"
    marker = frozen / "marker"
    marker.write_text("stale")
    build.build_unix("h2o")
    assert marker.exists(), "same flags: the frozen bytecode cache is kept"
    build.build_unix("h2o", flags=build.UNIX_MPY_CROSS_FLAGS + " -O1")
    assert not marker.exists(), "new flags: everything is frozen again"
    build.build_unix("h2o")


@pytest.mark.parametrize("board", ["EPX_ESP32", "EPX_WT32_ETH01"])
@pytest.mark.parametrize("profile", build.profiles())
def test_esp32_check_passes_for_every_profile(profile, board):
    report = build.esp32_check(profile, board)
    assert 0 < report["frozen_bytes"] <= build.FROZEN_BUDGET
    assert report["app_slot"] >= 0x1E0000


def test_esp32_check_names_the_file_with_a_syntax_error(tmp_path):
    pkg = tmp_path / "broken"
    pkg.mkdir()
    (pkg / "ok.py").write_text("X = 1\n")
    (pkg / "bad.py").write_text("def f(:\n    pass\n")
    manifest = tmp_path / "broken_profile.py"
    manifest.write_text('include("%s")\npackage("broken")\n' % (ROOT / "modules" / "epx" / "manifest.py"))
    result = epx_cli("esp32-check", str(manifest))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "bad.py:1:" in result.stderr and "SyntaxError" in result.stderr


def test_manifest_freezing_a_missing_file_is_one_line(tmp_path):
    manifest = tmp_path / "missing.py"
    manifest.write_text('module("nowhere.py")\n')
    for command in ("esp32-check", "unix"):
        result = epx_cli(command, str(manifest))
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and "nowhere.py" in result.stderr
    assert not (build.BUILD / "unix-missing" / "micropython").exists()


def test_unknown_profile_and_board_are_refused():
    result = epx_cli("unix", "nosuch")
    assert result.returncode == 1 and "manifests/nosuch.py: unknown profile" in result.stderr
    result = epx_cli("esp32-check", "h2o", "--board", "NOSUCH")
    assert result.returncode == 1 and "boards/NOSUCH: unknown board" in result.stderr


def test_corrupt_source_tarball_is_refused(tmp_path):
    tarball = tmp_path / source.ORIG_TARBALL
    tarball.write_bytes(b"not the pinned tarball")
    with pytest.raises(EpxError, match="sha256 .* is not the pinned"):
        source.verify_sha256(tarball, source.ORIG_SHA256)


def test_wrong_micropython_version_is_refused(tmp_path, monkeypatch):
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "mpconfig.h").write_text(
        "#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 24\n#define MICROPY_VERSION_MICRO 1\n")
    monkeypatch.setenv("MICROPY_DIR", str(tmp_path))
    with pytest.raises(EpxError, match="MicroPython 1.24.1, epx is pinned to 1.25.0"):
        source.micropython_dir()


def test_deb_src_entry_is_derived_from_apt_sources():
    deb822 = ("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n"
              "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
              "Types: deb\nURIs: http://other.example/node\nSuites: nodistro\n")
    assert list(source.deb822_entries(deb822))[0] == (
        "http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg")
    line = "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
    assert list(source.one_line_entries(line)) == [("http://m.example/debian", "/k.gpg")]


def test_partition_tables_are_valid_and_checked(tmp_path):
    table = partitions.load(ROOT / "boards" / "EPX_ESP32" / "partitions.csv")
    names = [p.name for p in table]
    assert names == ["nvs", "otadata", "phy_init", "ota_0", "ota_1", "vfs"]
    assert table[-1].offset + table[-1].size == partitions.FLASH_SIZE
    bad = tmp_path / "partitions.csv"
    bad.write_text("nvs, data, nvs, 0x9000, 0x6000\notadata, data, ota, 0xf000, 0x2000\n"
                   "ota_0, app, ota_0, 0x18000, 0x100000\n")
    with pytest.raises(EpxError, match="partitions.csv:3: ota_0 at 0x18000 is not aligned"):
        partitions.load(bad)
    bad.write_text("nvs, data, nvs, 0x9000, 0x6000\notadata, data, ota, 0xf000, 0x2000\n"
                   "ota_0, app, ota_0, 0x20000, 0x1f0000\nota_1, app, ota_1, 0x200000, 0x1f0000\n"
                   "vfs, data, fat, , 0x20000\n")
    with pytest.raises(EpxError, match="ota_1 at 0x200000 overlaps"):
        partitions.load(bad)


@pytest.mark.parametrize("profile", build.profiles())
def test_version_fits_the_app_descriptor(profile):
    version = build.firmware_version(profile)
    assert version.startswith(profile + "-") and len(version) <= build.VERSION_MAX
