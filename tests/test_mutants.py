"""The kept mutants (tests/mutants/, `make mutants`): each applies to the tree as it is, and
they cover every part the project claims behaviour of. The runner itself is shown to fail
a run with a surviving mutant and to pass one whose mutant is killed (host-only mutants of
a test helper, no firmware built)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "mutants"))

import run as mutants  # noqa: E402

# Where the mutants must reach: a part, and the files that make it.
PARTS = {
    "uumqtt": ("modules/uumqtt/",),
    "core": ("modules/epx/loop.py", "modules/epx/mqtt.py", "modules/epx/net.py",
             "modules/epx/health.py", "modules/epx/watchdog.py", "modules/epx/app.py"),
    "ota": ("modules/epx/ota.py", "modules/epx/otawrite.py", "modules/epx/appimage.py"),
    "replay": ("modules/epx/replay.py",),
    "config": ("modules/epx/config.py", "modules/epx/confstore.py", "modules/epx/confcmd.py"),
    "portal": ("modules/epx/portal.py",),
    "update offers": ("modules/epx/update.py",),
    **{p: (f"profiles/{p}/",) for p in ("h2o", "energy", "weather", "switch", "relay", "scale",
                                        "scale_manager")},
}


def test_every_mutant_applies_once_to_the_tree():
    found = mutants.load()
    assert len(found) >= 40, len(found)
    assert [p for m in found for p in mutants.check(m)] == []


def test_the_mutants_reach_every_part():
    files = [m["file"] for m in mutants.load()]
    assert [part for part, where in PARTS.items()
            if not any(f.startswith(w) for f in files for w in where)] == []


def test_a_mutant_that_does_not_apply_is_named():
    m = dict(mutants.load()[0], search="no such text anywhere")
    assert mutants.check(m) == [f"{m['name']}: search text found 0 times in {m['file']}, not once"]


def runner(*args):
    return subprocess.run([sys.executable, str(ROOT / "tests" / "mutants" / "run.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.timeout(600)
def test_a_surviving_mutant_fails_the_run():
    r = runner("--only", "selftest-harmless-host", "tests/mutants/selftest/harmless.toml")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED selftest-harmless-host: survived" in r.stdout, r.stdout
    r = runner("tests/mutants/selftest/killed.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 killed" in r.stdout, r.stdout
