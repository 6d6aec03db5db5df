"""Versions of one test profile (tests/firmware/ota_app) as app images, for OTA tests:
image("2.0") is ota_app-2.0; a version ending in -crash crashes at boot, -unhealthy never
reaches the broker (fails its health check), -hang trips the watchdog. And a config for
their devices."""

import os
import re
import shutil
import subprocess
import sys

from epx import build
from epx.paths import BUILD, ROOT
from epx.sim import appimage

PROFILE = "ota_app"
KEY = "k3y-for-tests"
SCALE = 20  # device seconds per real second: boot delays and health checks pass quickly

_images = {}


def image(tag):
    """The app image of ota_app built as version ota_app-<tag>, in its own build root
    (seeded from another host build, so only the frozen part compiles)."""
    if tag not in _images:
        root = BUILD / f"ota-{tag}"
        _seed(root / f"unix-{PROFILE}")
        env = dict(os.environ, EPX_BUILD=str(root), EPX_VERSION=tag)
        subprocess.run([sys.executable, "-m", "epx", "unix", PROFILE], env=env, check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
        exe = root / f"unix-{PROFILE}" / "micropython"
        version = (exe.parent / "version.txt").read_text().strip()
        assert version == f"{PROFILE}-{tag}"
        out = exe.parent / "app.bin"
        if not out.exists() or out.stat().st_mtime < exe.stat().st_mtime:
            tmp = out.with_name(f"app.bin.{os.getpid()}")
            appimage.write(exe, version, tmp)
            os.replace(tmp, out)
        _images[tag] = out.read_bytes()
    return _images[tag]


def _seed(build_dir):
    """A copy of a sibling build's objects whose dependency files name build_dir, as
    build.seed_from_sibling does within one build root."""
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with build.locked(build_dir.parent / ".seed.lock"):
        if build_dir.exists():
            return
        sibling = sorted(BUILD.glob("unix-*/micropython"))[0].parent
        tmp = build_dir.with_name(build_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with build.locked(BUILD / f".{sibling.name}.lock"):
            shutil.copytree(sibling, tmp, symlinks=True, ignore=shutil.ignore_patterns(
                "frozen_mpy", "frozen_content.*", "micropython", "micropython.map", "gen",
                "manifest.py", "version.txt", "make.log", "app.bin"))
        foreign = re.compile(re.escape(str(BUILD)) + r"/unix-[^/\s]+/")
        for dep in tmp.rglob("*.P"):
            text = dep.read_text()
            dep.write_text(foreign.sub(lambda m: str(build_dir) + "/", text))
        os.replace(tmp, build_dir)


def config(broker, name, key=KEY, **extra):
    # At SCALE a device second is 50 ms: a loaded test machine must not look like a hung
    # loop or a dead broker. Tests about the watchdog turn it on.
    lines = {"ssid": "epx-sim", "mqttbroker": broker.host, "mqttport": broker.port,
             "mqttname": name, "ota_key": key, "ota_healthy_s": 5, "ota_verify_s": 60,
             "homeassistant": 0, "mqttkeepalive": 600, "watchdog": 0}
    lines.update(extra)
    return "".join(f"{k} {v}\n" for k, v in lines.items())
