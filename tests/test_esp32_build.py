"""`make esp32` into an existing build folder (issue: the app descriptor kept the old
PROJECT_VER, so OTA refused the image): a new frozen version configures the ESP-IDF build
again, and an image whose descriptor is not the frozen version never reaches dist/. Runs
without Docker: tests/fake_docker.py behaves as ESP-IDF's CMake does (PROJECT_VER is read
only when configuring)."""

import json
import subprocess

import pytest

import fake_docker
from esptoolkit import image_info
from clone import STOCK_PATH, fresh_clone, micropython_tree, stock_env
from epx import ota, secver
from epx.errors import EpxError
from epx.sim import appimage

PROFILE, BOARD = "h2o", "EPX_ESP32"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esp32")
    clone = fresh_clone(tmp / "epx")
    log = fake_docker.install(tmp / "bin")
    env = stock_env(PATH=f"{tmp / 'bin'}:{STOCK_PATH}", MICROPY_DIR=micropython_tree())
    done = subprocess.run(["bash", "ci/setup.sh"], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return clone, env, log


def make_esp32(checkout, version, **env):
    clone, base, _ = checkout
    return subprocess.run(["make", "esp32", f"PROFILE={PROFILE}", f"BOARD={BOARD}"], cwd=clone,
                          env=dict(base, EPX_VERSION=version, **env), capture_output=True, text=True, timeout=600)


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


def test_make_esp32_says_its_stages_and_without_a_docker_daemon_is_one_line(checkout):
    done = make_esp32(checkout, "3.0")
    assert done.returncode == 0, done.stdout + done.stderr
    stages = [line.split(" (")[0] for line in done.stdout.splitlines() if line.startswith("epx: ")]
    assert stages == ["epx: checking h2o for EPX_ESP32: manifest, pins, bytecode, size",
                      "epx: building the Docker image epx-idf:v5.2.2-mpy1.25.0",
                      "epx: compiling h2o for EPX_ESP32 with ESP-IDF"], done.stdout
    assert "the first time about 2 GB and 10-20 min" in done.stdout
    done = make_esp32(checkout, "3.1", FAKE_DOCKER_NO_DAEMON="1")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make: ***")]
    assert ours == ["epx: docker: no daemon (Cannot connect to the Docker daemon at "
                    "unix:///var/run/docker.sock. Is the docker daemon running?); start it, e.g. "
                    "`sudo systemctl start docker`"], done.stderr
    assert dist(checkout)[0] == "h2o-3.0"  # dist/ untouched


def test_the_build_step_runs_with_no_network(checkout):
    """The image holds the source and the IDF components (tests/test_esp32_image.py): its
    build runs with no network, in the image epx built or in one it is given (CI builds the
    image once per workflow run and names it in EPX_ESP_IDF_IMAGE)."""
    log = checkout[2]
    log.write_text("")
    assert make_esp32(checkout, "2.0").returncode == 0
    assert make_esp32(checkout, "2.1", EPX_ESP_IDF_IMAGE="epx-idf:ci").returncode == 0
    calls = [line.split() for line in log.read_text().splitlines()]
    assert [c[:2] for c in calls if c[0] == "info"] == [["info", "--format"]] * 2  # the daemon answers
    calls = [c for c in calls if c[0] != "info"]
    assert [c[:3] for c in calls] == [["build", "-t", "epx-idf:v5.2.2-mpy1.25.0"], ["run", "--rm", "--network"],
                                      ["run", "--rm", "--network"]]
    for call, image in ((calls[1], "epx-idf:v5.2.2-mpy1.25.0"), (calls[2], "epx-idf:ci")):
        assert call[3] == "none"
        assert call[call.index("epx-build") - 1] == image


def test_a_release_stamps_its_secure_version_into_both_images(checkout, tmp_path):
    # A release raises [tool.epx] secure-version: the devices' anti-rollback floor follows
    # the number in the app descriptor, so both dist images must carry it, still valid.
    clone = checkout[0]
    pyproject = clone / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("secure-version = 0", "secure-version = 3"))
    done = make_esp32(checkout, "1.3")
    assert done.returncode == 0, done.stdout + done.stderr
    out = clone / "dist" / f"{PROFILE}-{BOARD}"
    app = (out / "micropython.bin").read_bytes()
    info = image_info(out / "micropython.bin")
    assert info["Secure version"] == "3" and info["App version"] == "h2o-1.3"
    assert info["Checksum"].endswith("(valid)") and info["Validation hash"].endswith("(valid)")
    # firmware.bin (flashed at 0x1000) holds the same app where the app partition starts.
    at = json.loads((out / "firmware.json").read_text())["flash"]["micropython.bin"] - 0x1000
    merged = (out / "firmware.bin").read_bytes()
    assert merged[at:at + len(app)] == app
    (tmp_path / "inside.bin").write_bytes(merged[at:at + len(app)])
    assert image_info(tmp_path / "inside.bin")["Secure version"] == "3"


def test_a_secure_version_that_cannot_be_stamped_is_refused(tmp_path):
    app = appimage.build(b"app" * 100, "h2o-1.0")
    assert image_info_bytes(tmp_path, secver.stamp(app, 7))["Secure version"] == "7"
    # A merged image whose app is not where the partition table says: nothing written.
    merged = b"\xff" * 0x100 + app
    with pytest.raises(EpxError, match="not at 0x200"):
        secver.stamp_merged(merged, 0x200, app, secver.stamp(app, 7))
    assert secver.stamp_merged(merged, 0x100, app, secver.stamp(app, 7))[0x100:] == secver.stamp(app, 7)
    # Not an app image; a value outside esp_app_desc_t's uint32_t.
    with pytest.raises(EpxError, match="app image"):
        secver.stamp(b"\xe9" + app[1:24], 7)
    bad = tmp_path / "pyproject.toml"
    for value in ("-1", "4294967296", '"2"', "true"):
        bad.write_text(f"[tool.epx]\nsecure-version = {value}\n")
        with pytest.raises(EpxError, match="secure-version"):
            secver.configured(bad)


def image_info_bytes(tmp_path, data):
    path = tmp_path / "image.bin"
    path.write_bytes(data)
    return image_info(path)
