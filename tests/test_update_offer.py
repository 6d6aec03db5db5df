"""The update entity without Home Assistant: an offer `epx ota --offer` signs and retains
for one device (real firmware images of tests/firmware/ota_app, a real mosquitto), the
device's JSON state on stat/<n>/Update as Home Assistant's MQTT update platform reads it,
and the Install command turned into exactly the offered update."""

import hashlib
import hmac
import json
import subprocess
import sys

import pytest

from epx import ota
from epx.paths import ROOT
from epx.sim import appimage
from otakit import KEY, SCALE, config, image

NAME = "upd1"


@pytest.fixture
def rig(device, broker, mqtt_watch):
    watch = mqtt_watch(broker)
    dev = device(image("1.0"), config=config(broker, NAME, ota_healthy_s=5), name=NAME)
    dev.call("clock.scale", factor=SCALE)
    watch.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", timeout=30, device=dev)
    target = ota.Target(NAME, KEY, broker.host, broker.port, None, None)
    servers = []

    def serve(data):
        servers.append(ota.ImageServer(data, host="127.0.0.1"))
        return servers[-1]

    yield dev, watch, target, serve, broker
    for s in servers:
        s.close()


def entity(watch, dev, since, predicate, timeout=30):
    """The first state of the update entity from index since on that satisfies predicate."""
    _, payload, _ = watch.wait_for(f"stat/{NAME}/Update", lambda p: predicate(json.loads(p)),
                                   since=since, timeout=timeout, device=dev)
    return json.loads(payload)


def signed(target, data, url, counter, name=None, key=None, **extra):
    """An offer signed as `epx ota --offer` signs it, with the test's changes before signing."""
    img = data if isinstance(data, ota.Image) else ota.load_image(data)
    req = ota.request(target, img, url, 0, verb="offer")
    req.update(counter=counter, **extra)
    req["hmac"] = hmac.new((key or target.key).encode(),
                           ota.message(name or target.name, req, "offer").encode(),
                           hashlib.sha256).hexdigest()
    return req


def test_an_offer_is_shown_and_installed_exactly(rig):
    dev, watch, target, serve, _ = rig
    offered = serve(image("2.0"))
    decoy = serve(image("3.0"))
    url = offered.url("127.0.0.1")
    state = entity(watch, dev, 0, lambda s: True)
    assert (state["installed_version"], state["latest_version"], state["in_progress"]) == \
        ("ota_app-1.0", "ota_app-1.0", False)  # nothing offered: up to date

    def offer(req, raw=None):
        m = watch.mark()
        watch.publish(f"cmnd/{NAME}/Offer", raw or json.dumps(req), retain=True, qos=1)
        return m

    # Nothing offered: Install has nothing to start.
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Update", "install", qos=1)
    watch.wait_for(f"stat/{NAME}/Log", lambda p: "no offer to install" in p, since=m, device=dev)

    # Refused, each shown in the entity and on stat/<n>/Log; the offered version stays.
    genuine = signed(target, image("2.0"), url, 1000, release_url="https://example.org/2.0")
    redirected = dict(genuine, url=decoy.url("127.0.0.1"))  # its signature, another image
    h2o = appimage.build(b"\0" * 4096, "h2o-1.0")
    cases = [
        (signed(target, image("3.0"), url, 902, release_url="javascript:alert(1)"),
         "release_url: not an http(s) URL"),
        (signed(target, ota.Image(h2o, "h2o-1.0", "h2o", ota.image_sha256(h2o)),
                decoy.url("127.0.0.1"), 903), "image for profile h2o, this device runs ota_app"),
        (signed(target, image("3.0"), decoy.url("127.0.0.1"), 900, key="not-the-key"), "bad hmac"),
        (signed(target, image("3.0"), decoy.url("127.0.0.1"), 901, name="upd2"), "bad hmac"),
        (redirected, "bad hmac"),
        (dict(genuine, release_url="https://example.org/other"), "bad hmac"),
    ]
    m0 = watch.mark()
    for req, error in cases:
        m = offer(req)
        watch.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("Offer: bad command") and error in p,
                       since=m, device=dev)
    state = entity(watch, dev, m0, lambda s: s["release_summary"] == "Offer refused: bad hmac")
    assert state["latest_version"] == "ota_app-1.0"

    # The genuine offer: shown with its release notes.
    m = offer(genuine)
    state = entity(watch, dev, m, lambda s: s["latest_version"] == "ota_app-2.0")
    assert state == {"installed_version": "ota_app-1.0", "latest_version": "ota_app-2.0",
                     "title": "epx ota_app", "release_summary": "", "in_progress": False,
                     "update_percentage": None, "release_url": "https://example.org/2.0"}
    # An older counter is a replay, even correctly signed; the genuine offer stays offered.
    m = offer(signed(target, image("3.0"), decoy.url("127.0.0.1"), 999))
    state = entity(watch, dev, m, lambda s: s["release_summary"].startswith("Offer refused"))
    assert state["release_summary"] == "Offer refused: replayed: counter 999, last accepted 1000"
    assert state["latest_version"] == "ota_app-2.0"
    m = offer(genuine)  # the genuine one back on the broker (retained), not replayed: the same offer
    entity(watch, dev, m, lambda s: s["latest_version"] == "ota_app-2.0" and not s["release_summary"])

    # Install takes no other payload: Home Assistant cannot name an image.
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Update", json.dumps({"url": decoy.url("127.0.0.1")}), qos=1)
    watch.wait_for(f"stat/{NAME}/Log", lambda p: "not 'install'" in p, since=m, device=dev)

    # Install: exactly the offered image, its progress in the entity, then the new version.
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Update", "install", qos=1)
    watch.wait_for(f"stat/{NAME}/OTA", lambda p: json.loads(p)["state"] == "rebooting",
                   since=m, timeout=60, device=dev)
    progress = [json.loads(p) for t, p, _ in watch.messages[m:] if t == f"stat/{NAME}/Update"]
    running = [s["update_percentage"] for s in progress if s["in_progress"]]
    assert running and running == sorted(running) and all(0 <= p <= 100 for p in running), progress
    state = entity(watch, dev, m, lambda s: s["installed_version"] == "ota_app-2.0", timeout=60)
    assert state["latest_version"] == "ota_app-2.0" and not state["in_progress"]  # up to date
    watch.wait_for(f"stat/{NAME}/OTA", lambda p: json.loads(p)["state"] == "kept", since=m,
                   timeout=60, device=dev)
    assert [b["version"] for b in dev.boots][-1] == "ota_app-2.0"
    assert (offered.gets, decoy.gets) == (1, 0)

    # Another signed command moves the replay guard on; the retained offer, delivered again
    # after the reboot, is still that one offer, not a replay.
    from epx import diag

    m = watch.mark()
    diag.send(target.broker, target.port, NAME, "reboot", key=KEY, counter=5000, timeout=20)
    watch.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=m, timeout=60, device=dev)
    state = entity(watch, dev, m, lambda s: True)
    assert (state["installed_version"], state["latest_version"], state["release_summary"]) == \
        ("ota_app-2.0", "ota_app-2.0", "")
    # The offer is spent once installed: Install has nothing to start.
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Update", "install", qos=1)
    watch.wait_for(f"stat/{NAME}/Log", lambda p: "no offer to install" in p, since=m, device=dev)
    assert offered.gets == 1
    watch.publish(f"cmnd/{NAME}/Offer", "", retain=True, qos=1)


def reboot(dev, watch, target, counter):
    from epx import diag

    m = watch.mark()
    diag.send(target.broker, target.port, NAME, "reboot", key=KEY, counter=counter, timeout=20)
    watch.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=m, timeout=60, device=dev)
    return m


def test_a_forged_offer_cannot_suppress_the_genuine_one(rig):
    dev, watch, target, serve, _ = rig
    url = serve(image("2.0")).url("127.0.0.1")
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Offer", json.dumps(signed(target, image("2.0"), url, 1000)),
                  retain=True, qos=1)
    entity(watch, dev, m, lambda s: s["latest_version"] == "ota_app-2.0")
    # Forged, in the genuine one's place on the broker: refused, the genuine one stays...
    m = watch.mark()
    forged = signed(target, image("2.0"), url, 1001, key="not-the-key")
    watch.publish(f"cmnd/{NAME}/Offer", json.dumps(forged), retain=True, qos=1)
    state = entity(watch, dev, m, lambda s: s["release_summary"] == "Offer refused: bad hmac")
    assert state["latest_version"] == "ota_app-2.0"
    # ... through a reboot too, with only the forged one on the broker.
    m = reboot(dev, watch, target, 5000)
    state = entity(watch, dev, m, lambda s: s["release_summary"] == "Offer refused: bad hmac")
    assert state["latest_version"] == "ota_app-2.0"
    watch.publish(f"cmnd/{NAME}/Offer", "", retain=True, qos=1)


def test_a_withdrawn_offer_is_forgotten_for_good(rig):
    dev, watch, target, serve, _ = rig
    url = serve(image("2.0")).url("127.0.0.1")
    genuine = json.dumps(signed(target, image("2.0"), url, 1000))
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Offer", genuine, retain=True, qos=1)
    entity(watch, dev, m, lambda s: s["latest_version"] == "ota_app-2.0")
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Offer", "", retain=True, qos=1)
    entity(watch, dev, m, lambda s: s["latest_version"] == "ota_app-1.0")
    # Posted again (by anyone who kept a copy): passed over, now and after a reboot.
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Offer", genuine, retain=True, qos=1)
    dev.wait_console(r"update: offer 1000 spent")
    m = reboot(dev, watch, target, 5000)
    state = entity(watch, dev, m, lambda s: True)
    assert state["latest_version"] == "ota_app-1.0"
    watch.publish(f"cmnd/{NAME}/Offer", "", retain=True, qos=1)


def test_an_offer_not_newer_is_refused_when_offered(rig):
    dev, watch, target, serve, _ = rig
    url = serve(image("1.0")).url("127.0.0.1")
    m = watch.mark()
    watch.publish(f"cmnd/{NAME}/Offer", json.dumps(signed(target, image("1.0"), url, 1000)),
                  retain=True, qos=1)
    state = entity(watch, dev, m, lambda s: s["release_summary"].startswith("Offer refused"))
    assert state["release_summary"] == "Offer refused: already running ota_app-1.0"
    assert state["latest_version"] == "ota_app-1.0"
    watch.publish(f"cmnd/{NAME}/Offer", "", retain=True, qos=1)


def test_epx_ota_offer_command(rig, tmp_path):
    dev, watch, target, serve, broker = rig
    server = serve(image("2.0"))
    cfg = tmp_path / "config.txt"
    cfg.write_text(config(broker, NAME))
    app_bin = tmp_path / "app.bin"
    app_bin.write_bytes(image("2.0"))
    argv = [sys.executable, "-m", "epx", "ota", str(app_bin), str(cfg), "--offer",
            "--url", server.url("127.0.0.1"), "--release-url", "https://example.org/notes"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and f"{NAME}: offered ota_app-2.0" in done.stdout, done
    _, payload, _ = watch.wait_for(f"cmnd/{NAME}/Offer", timeout=5)
    assert json.loads(payload)["version"] == "ota_app-2.0"
    state = entity(watch, dev, 0, lambda s: s["latest_version"] == "ota_app-2.0")
    assert state["release_url"] == "https://example.org/notes"
    # signed with another key: the device refuses it and the command says why
    cfg.write_text(config(broker, NAME, key="other-key"))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1 and "refused: Offer refused: bad hmac" in done.stdout, done
    # without --url there is nothing to offer
    done = subprocess.run(argv[:7], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode != 0 and "--offer needs --url" in done.stderr, done
    watch.publish(f"cmnd/{NAME}/Offer", "", retain=True, qos=1)

