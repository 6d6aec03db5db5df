"""Full-image OTA end to end in the simulator: real firmware images of one test profile
(tests/firmware/ota_app built as several versions), a real mosquitto, `epx ota`'s library
serving the image over HTTP and signing the request, and the simulated bootloader's
ESP-IDF rollback."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from epx import ota
from epx.paths import BUILD, ROOT
from epx.sim import appimage

PROFILE = "ota_app"
KEY = "k3y-for-tests"
SCALE = 20  # device seconds per real second: boot delays and health checks pass quickly


# --- firmware versions of one profile ---------------------------------------------

_images = {}


def image(tag):
    """The app image of ota_app built as version ota_app-<tag>, in its own build root
    (seeded from another host build, so only the frozen part compiles)."""
    if tag not in _images:
        root = BUILD / f"ota-{tag}"
        root.mkdir(parents=True, exist_ok=True)
        seed = root / "unix-seed"
        if not seed.exists():
            siblings = sorted(p.parent for p in BUILD.glob("unix-*/micropython"))
            try:
                seed.symlink_to(siblings[0])
            except FileExistsError:
                pass
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


def config(broker, name, key=KEY, **extra):
    lines = {"ssid": "testap", "mqttbroker": broker.host, "mqttport": broker.port,
             "mqttname": name, "ota_key": key, "ota_healthy_s": 5, "ota_verify_s": 60,
             "homeassistant": 0}
    lines.update(extra)
    return "".join(f"{k} {v}\n" for k, v in lines.items())


class Rig:
    """A device running ota_app-1.0 on the broker, watched on MQTT."""

    def __init__(self, device, broker, watch, name="ota1", **cfg):
        self.name = name
        self.config_text = config(broker, name, **cfg)
        self.dev = device(image("1.0"), config=self.config_text, name=name)
        self.dev.call("clock.scale", factor=SCALE)
        self.watch = watch
        self.broker = broker
        self.target = ota.Target(name, KEY, broker.host, broker.port, None, None)
        self.online()

    def online(self, since=0):
        return self.watch.wait_for(f"stat/{self.name}/LWT", lambda p: p == "Online", timeout=30,
                                   since=since, device=self.dev)

    def status(self, state, since=0, timeout=30):
        _, payload, _ = self.watch.wait_for(
            f"stat/{self.name}/OTA", lambda p: json.loads(p)["state"] == state, timeout=timeout,
            since=since, device=self.dev)
        return json.loads(payload)

    def update(self, img, **kw):
        kw.setdefault("comeback_timeout", 60)
        return ota.rollout([self.target], ota.load_image(img), serve_host="127.0.0.1", **kw)[0]

    def slot_versions(self):
        return [b["version"] for b in self.dev.boots]


@pytest.fixture
def rig(device, broker, mqtt_watch):
    watch = mqtt_watch(broker)
    return lambda **kw: Rig(device, broker, watch, **kw)


def test_update_kept_and_reported(rig):
    r = rig()
    seen = []
    result = r.update(image("2.0"), progress=lambda n, done, size: seen.append((done, size)))
    assert result == ota.Result("ota1", "kept", "ota_app-2.0", None), r.dev.output()
    assert seen and seen[-1][0] == seen[-1][1] == len(image("2.0"))
    boots = r.dev.boots
    assert (boots[-1]["slot"], boots[-1]["version"]) == ("ota_1", "ota_app-2.0")
    # kept: the otadata entry is valid now, so a power cycle boots the new version again
    r.dev.power_cycle()
    assert r.dev.wait_boot(len(boots) + 1)["version"] == "ota_app-2.0"
    assert r.dev.boots[-1]["state"] == "valid"
