"""`make esp32` into an existing build folder (issue: the app descriptor kept the old
PROJECT_VER, so OTA refused the image): a new frozen version configures the ESP-IDF build
again, and an image whose descriptor is not the frozen version never reaches dist/. Runs
without Docker: tests/fake_docker.py behaves as ESP-IDF's CMake does (PROJECT_VER is read
only when configuring)."""

import json
import subprocess

import pytest

import fake_docker
from clone import STOCK_PATH, fresh_clone, micropython_tree, stock_env
from epx import ota

PROFILE, BOARD = "h2o", "EPX_ESP32"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esp32")
    clone = fresh_clone(tmp / "epx")
    fake_docker.install(tmp / "bin")
    env = stock_env(PATH=f"{tmp / 'bin'}:{STOCK_PATH}", MICROPY_DIR=micropython_tree())
    done = subprocess.run(["bash", "ci/setup.sh"], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return clone, env


def make_esp32(checkout, version):
    clone, env = checkout
    return subprocess.run(["make", "esp32", f"PROFILE={PROFILE}", f"BOARD={BOARD}"], cwd=clone,
                          env=dict(env, EPX_VERSION=version), capture_output=True, text=True, timeout=600)


def dist(checkout):
    out = checkout[0] / "dist" / f"{PROFILE}-{BOARD}"
    info = json.loads((out / "firmware.json").read_text())
    return info["version"], ota.load_image(out / "micropython.bin").version


def test_rebuild_carries_the_new_version_or_is_refused(checkout):
    done = make_esp32(checkout, "1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert dist(checkout) == ("h2o-1.0", "h2o-1.0")

    # The same build folder, a new version: configured again, the descriptor follows.
    done = make_esp32(checkout, "1.1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert dist(checkout) == ("h2o-1.1", "h2o-1.1")

    # A folder that claims to be configured for the new version but is not (the old bug:
    # CMake's cache keeps 1.1): the stale image is refused and dist/ keeps the last good one.
    idf = checkout[0] / "build" / f"esp32-{PROFILE}-{BOARD}" / "idf"
    (idf / "epx-project-ver").write_text("h2o-1.2\n")
    done = make_esp32(checkout, "1.2")
    assert done.returncode != 0
    assert "app descriptor says 'h2o-1.1', the frozen version is 'h2o-1.2'" in done.stderr
    assert dist(checkout) == ("h2o-1.1", "h2o-1.1")
