"""Full-image OTA end to end in the simulator: real firmware images of one test profile
(tests/firmware/ota_app built as several versions), a real mosquitto, `epx ota`'s library
serving the image over HTTP and signing the request, and the simulated bootloader's
ESP-IDF rollback."""

import hashlib
import hmac
import itertools
import json
import re
import subprocess
import sys
import threading
import time

import pytest
from esptool.bin_image import ELFSection, ESP32S3FirmwareImage

from epx import build, ota
from epx.paths import ROOT
from epx.sim import appimage
from httpkit import RawServer
from otakit import KEY, PROFILE, SCALE, config, image

ESP32_HEAP = 120 * 1024  # what MicroPython gets on an ESP32 without PSRAM


class Rig:
    """A device running ota_app-1.0 on the broker, watched on MQTT."""

    def __init__(self, device, broker, watch, name="ota1", env=None, heapsize=None, files=None,
                 start="1.0", **cfg):
        self.name = name
        self.config_text = config(broker, name, **cfg)
        self.dev = device(image(start), config=self.config_text, name=name, env=env or {},
                          files=files, **({"heapsize": heapsize} if heapsize else {}))
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
    r = rig(heapsize=ESP32_HEAP, ota_healthy_s=40)
    seen, results = [], []
    mark = r.watch.mark()
    th = threading.Thread(target=lambda: results.append(
        r.update(image("2.0"), progress=lambda n, done, size: seen.append((done, size)))))
    th.start()
    r.status("rebooting", since=mark)
    r.online(since=r.watch.mark())
    # on trial (40 s of health to go): no other update meanwhile
    trial = ask(r, image("1.0"), "http://127.0.0.1:9/x")
    assert trial["state"] == "refused" and "on trial" in trial["error"]
    th.join(60)
    assert results == [ota.Result("ota1", "kept", "ota_app-2.0", None)], r.dev.output()
    assert seen and seen[-1][0] == seen[-1][1] == len(image("2.0"))
    boots = r.dev.boots
    assert (boots[-1]["slot"], boots[-1]["version"]) == ("ota_1", "ota_app-2.0")
    mark = r.watch.mark()  # the diagnostics still answer
    for command, reply in (("getversion", "ota_app-2.0"), ("partitions", "running ota_1, next ota_0"),
                           ("keepversion", "kept")):
        r.watch.publish(f"cmnd/{r.name}/OTA", command)
        r.watch.wait_for(f"stat/{r.name}/Log", lambda p: p == reply, since=mark, device=r.dev)
    # kept: the otadata entry is valid now, so a power cycle boots the new version again
    r.dev.power_cycle()
    assert r.dev.wait_boot(len(boots) + 1)["version"] == "ota_app-2.0"
    assert r.dev.boots[-1]["state"] == "valid"


def test_rollback_from_an_image_that_crashes_at_boot(rig):
    r = rig()
    result = r.update(image("2.0-crash"))
    assert result.outcome == "rolled back", r.dev.output()
    assert result.version == "ota_app-1.0"
    tried = [b for b in r.dev.boots if b["version"] == "ota_app-2.0-crash"]
    assert [(b["slot"], b["state"]) for b in tried] == [("ota_1", "pending_verify")]
    assert r.dev.boots[-1]["slot"] == "ota_0"
    assert "crashes at boot" in r.dev.output(boot=tried[0]["boot"])


def test_rollback_from_an_image_that_trips_the_watchdog(rig):
    r = rig(watchdog=1)
    result = r.update(image("2.0-hang"))
    assert result.outcome == "rolled back", r.dev.output()
    tried = [b for b in r.dev.boots if b["version"] == "ota_app-2.0-hang"]
    assert [(b["slot"], b["state"], b["exit"]) for b in tried] == [("ota_1", "pending_verify", 11)]
    assert r.dev.boots[-1]["slot"] == "ota_0" and r.dev.boots[-1]["reset_cause"] == 3  # WDT_RESET


def test_rollback_from_an_image_that_fails_its_health_check(rig):
    r = rig()
    result = r.update(image("2.0-unhealthy"))
    assert result.outcome == "rolled back", r.dev.output()
    assert result.version == "ota_app-1.0"
    tried = [b for b in r.dev.boots if b["version"] == "ota_app-2.0-unhealthy"]
    assert [(b["slot"], b["state"]) for b in tried] == [("ota_1", "pending_verify")]
    assert "not healthy within 60 s" in r.dev.output(boot=tried[0]["boot"])
    assert r.dev.boots[-1]["slot"] == "ota_0" and r.dev.boots[-1]["state"] == "valid"


# --- refused requests ---------------------------------------------------------------

# Counters for requests made here: above the cases' fixed 99 and 100, below `epx ota`'s (Unix
# time), and never smaller than the one before (a counter taken from a clock could wrap).
COUNTERS = itertools.count(1000)


def ask(r, data, url, version=None, sha256=None, key=KEY, counter=None, size=None,
        allow_downgrade=False):
    """Send one signed request as `epx ota` would (but for whatever image and claims the
    test makes up) and return the device's final status for it."""
    desc_version = appimage.parse_descriptor(data[32:32 + 256])["version"] if version is None else version
    img = ota.Image(data, desc_version, desc_version.split("-", 1)[0],
                    sha256 or ota.image_sha256(data))
    t = r.target._replace(key=key)
    req = ota.request(t, img, url, 0)
    req["counter"] = counter if counter is not None else next(COUNTERS)
    if size is not None:
        req["size"] = size
    if allow_downgrade:
        req["allow_downgrade"] = True
    # signed here, for claims epx ota would not make (a counter outside its range)
    req["hmac"] = hmac.new(key.encode(), ota.message(t.name, req).encode(), hashlib.sha256).hexdigest()
    link = ota.Link(t)
    try:
        link.send(req)
        while True:
            status = link.next(30)
            assert status is not None, r.dev.output()
            if status["state"] in ("refused", "failed", "rebooting"):
                return status
    finally:
        link.close()


def test_a_url_whose_name_never_resolves_fails_without_a_reset(rig):
    # lwIP gives a DNS server 7 s; three that never answer block a look-up for 21 s, past
    # the 15 s watchdog unless the device says it may block (watchdog.may_block).
    r = rig(watchdog=1)
    r.dev.call("wifi.set", dns_ms=8000, dns_servers=3)
    server = ota.ImageServer(image("2.0"))
    try:
        status = ask(r, image("2.0"), server.url("localhost"))
    finally:
        server.close()
    assert status["state"] == "failed", status
    assert "download: cannot resolve localhost (error -202)" in status["error"], status
    assert len(r.dev.boots) == 1


def with_digest(data):
    """data with its appended SHA-256 recomputed (after a deliberate change before it)."""
    return data[:-32] + hashlib.sha256(data[:-32]).digest()


def other_chip_image(version):
    img = ESP32S3FirmwareImage()
    img.entrypoint = 0x40380000
    img.segments = [ELFSection(b".flash.appdesc", 0x3C000020, appimage.descriptor(version, b"x"), 0)]
    return img.save(None)


def test_refused_requests_change_nothing(rig):
    r = rig(ota_timeout_s=10)
    otadata = r.dev.flash.read("otadata")
    boots = len(r.dev.boots)
    good = image("2.0")
    server = ota.ImageServer(good)
    url = server.url("127.0.0.1")
    checksum_only = bytearray(good)
    checksum_only[32 + 256 + 8 + 1000] ^= 0x01  # an executable byte: the XOR checksum breaks
    bad_digest = good[:-5] + bytes([good[-5] ^ 0x01]) + good[-4:]
    servers = [server]

    def serve(data):
        s = ota.ImageServer(data)
        servers.append(s)
        return s.url("127.0.0.1")

    def raw(*script):
        s = RawServer(*script)
        servers.append(s)
        return s.url()

    head = f"HTTP/1.0 200 OK\r\nContent-Length: {len(good)}\r\n\r\n".encode()
    other_profile = appimage.build(b"\0" * 4096, "h2o-1.0")
    try:
        cases = [
            (dict(data=good, url=url, key="not-the-key"), "refused", "bad hmac"),
            (dict(data=good, url=url, counter=2**64), "refused", "counter 18446744073709551616 outside 0..2**64-1"),
            (dict(data=good, url=url + "x", counter=100), "failed", "HTTP 404"),  # counter 100 taken
            (dict(data=good, url=url, counter=100), "refused", "replayed: counter 100, last accepted 100"),
            (dict(data=good, url=url, counter=99), "refused", "replayed: counter 99"),
            (dict(data=other_profile, url=serve(other_profile)), "refused", "image for profile h2o, this device runs ota_app"),
            (dict(data=other_profile, url=serve(other_profile), version="ota_app-3.0"), "failed", "image is h2o-1.0, the request says ota_app-3.0"),
            (dict(data=good, url=url, sha256="ab" * 32), "failed", "SHA-256 of the image does not match the request"),
            (dict(data=good, url=serve(bad_digest)), "failed", "image: appended SHA-256 does not match"),
            (dict(data=good, url=url, size=len(good) - 1), "failed", f"server sends {len(good)} bytes, the request says {len(good) - 1}"),
            (dict(data=good, url=raw(head, good[:len(good) // 2])), "failed", f"download: body ended after {len(good) // 2} of {len(good)} bytes"),
            (dict(data=good, url=url + "x"), "failed", "download: HTTP 404"),
            (dict(data=good, url=raw(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")), "failed", "download: HTTP 500"),
            (dict(data=good, url=raw(b"HTTP/1.1 301 Moved\r\nLocation: http://x/\r\n\r\n")), "failed", "redirects are not followed"),
            (dict(data=good, url=raw(head, good[:100000], None)), "failed", f"download stalled at 100000 of {len(good)} bytes"),
            (dict(data=with_digest(bytes(checksum_only)), url=serve(with_digest(bytes(checksum_only))), version="ota_app-2.0"), "failed", "image: checksum"),
            (dict(data=other_chip_image("ota_app-3.0"), url=serve(other_chip_image("ota_app-3.0")), version="ota_app-3.0"), "failed", "image: chip id 9, not esp32"),
            (dict(data=image("1.0"), url=serve(image("1.0"))), "refused", "already running ota_app-1.0"),
        ]
        for kw, state, error in cases:
            status = ask(r, **kw)
            assert status["state"] == state and error in status["error"], (error, status)
    finally:
        for s in servers:
            s.close()
    assert r.dev.flash.read("otadata") == otadata  # the boot partition never changed
    assert len(r.dev.boots) == boots  # and the device never rebooted
    # a retained request (valid but for its retain flag) is ignored after the next boot
    img = ota.load_image(good)
    r.watch.publish(f"cmnd/{r.name}/OTA", json.dumps(ota.request(r.target, img, url, 2**31 - 2)),
                    retain=True, qos=1)
    console = r.dev.console_mark()
    r.dev.power_cycle()
    r.dev.wait_console(r"retained cmnd/ota1/OTA ignored", since=console, timeout=30)
    r.watch.publish(f"cmnd/{r.name}/OTA", "", retain=True, qos=1)
    assert r.dev.flash.read("otadata") == otadata
    # the device is still reachable and takes a genuine update
    assert r.update(good).outcome == "kept"


# --- power loss ---------------------------------------------------------------------

def send(r, data, url, counter):
    """Publish a signed request for data and return at once."""
    link = ota.Link(r.target)
    try:
        desc = appimage.parse_descriptor(data[32:32 + 256])
        img = ota.Image(data, desc["version"], PROFILE, ota.image_sha256(data))
        link.send(ota.request(r.target, img, url, counter))
    finally:
        link.close()


def test_power_loss_during_the_write_and_the_boot_switch(rig):
    new = image("2.0")
    ops = 2 * -(-len(new) // 4096)  # an erase and a write per 4 KB sector of ota_1
    points = [f"ota_1:{n}" for n in sorted({1, 2, 3, 4, 5, 6, ops - 3, ops - 2, ops - 1, ops,
                                              *range(8, ops - 4, max(1, ops // 11))})]
    points += ["otadata:1", "otadata:2"]  # set_boot: erase the other entry's sector, write it
    assert len([p for p in points if p.startswith("ota_1")]) >= 20
    plan = dict(enumerate(points, 1))  # boot n cuts at plan[n]
    r = rig(env=lambda n: {"EPX_SIM_CUT": plan[n]} if n in plan else {})
    server = ota.ImageServer(new)
    url = server.url("127.0.0.1")
    try:
        for boot, point in plan.items():
            assert r.dev.wait_boot(boot, timeout=30)["version"] == "ota_app-1.0", point  # the old image boots
            mark = r.watch.mark()
            r.online(since=mark if boot > 1 else 0)
            console = r.dev.console_mark()
            send(r, new, url, counter=1000 + boot)
            r.dev.wait_console(r"sim: power cut", since=console, timeout=30)
            r.dev.power_cycle()
        mark = r.watch.mark()
        last = r.dev.wait_boot(len(plan) + 1, timeout=30)
        assert (last["slot"], last["version"]) == ("ota_0", "ota_app-1.0")
        # a cut in the boot switch left the record of the update: the old image says so
        assert r.status("rolled back", since=mark)["failed"] == "ota_app-2.0"
        # the retry succeeds
        assert r.update(new).outcome == "kept", r.dev.output()
        assert r.dev.boots[-1]["version"] == "ota_app-2.0"
        # back to ota_0: now set_boot erases the sector of the entry that names the old ota_0
        newer = image("3.0")
        server2 = ota.ImageServer(newer)
        first = len(r.dev.boots) + 1
        plan.update({first: "otadata:1", first + 1: "otadata:2"})
        r.dev.power_cycle()
        for boot in (first, first + 1):
            assert r.dev.wait_boot(boot, timeout=30)["version"] == "ota_app-2.0"
            r.online(since=r.watch.mark())
            console = r.dev.console_mark()
            send(r, newer, server2.url("127.0.0.1"), counter=2**31 - 100 + boot)
            r.dev.wait_console(r"sim: power cut", since=console, timeout=30)
            r.dev.power_cycle()
        mark = r.watch.mark()
        last = r.dev.wait_boot(first + 2, timeout=30)
        assert (last["slot"], last["version"]) == ("ota_1", "ota_app-2.0")
        assert r.status("rolled back", since=mark)["failed"] == "ota_app-3.0"
        assert r.update(newer).outcome == "kept", r.dev.output()
        server2.close()
    finally:
        server.close()
    assert (r.dev.boots[-1]["slot"], r.dev.boots[-1]["version"]) == ("ota_0", "ota_app-3.0")


# --- several devices and the command line ------------------------------------------------

def test_canary_that_does_not_stay_stops_the_rollout(rig):
    canary, other = rig(name="ota-a"), rig(name="ota-b")
    other_boots = len(other.dev.boots)
    mark = other.watch.mark()
    results = ota.rollout([canary.target, other.target], ota.load_image(image("2.0-crash")),
                          serve_host="127.0.0.1", comeback_timeout=60)
    assert [(x.name, x.outcome, x.version) for x in results] == [("ota-a", "rolled back", "ota_app-1.0")]
    assert len(other.dev.boots) == other_boots
    assert not [m for m in other.watch.messages[mark:] if m[0] == "cmnd/ota-b/OTA"]


def test_epx_ota_command_updates_every_device(rig, tmp_path):
    devices = [rig(name="ota-c"), rig(name="ota-d")]
    configs = []
    for r in devices:
        path = tmp_path / f"{r.name}.txt"
        path.write_text(r.config_text)
        configs.append(str(path))
    app_bin = tmp_path / "app.bin"
    app_bin.write_bytes(image("2.0"))
    done = subprocess.run([sys.executable, "-m", "epx", "ota", str(app_bin), *configs,
                           "--serve-host", "127.0.0.1", "--timeout", "60"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ota_app-2.0: ")
    # after 100%, what the wait is for and until when, for each device
    waits = [l for l in lines if " rebooting into it" in l]
    for r, line in zip(devices, sorted(waits)):
        healthy = re.search(r"(?m)^ota_healthy_s (\d+)", r.config_text)
        assert re.fullmatch(
            rf"{r.name}: ota_app-2.0 written, rebooting into it: the device keeps it once healthy "
            rf"\(network, broker, config\) for {healthy.group(1) if healthy else 60} s, else rolls "
            rf"back; waiting until \d\d:\d\d:\d\d \(--timeout 60 s\)", line), line
    assert sorted(l for l in lines[1:] if l not in waits) == ["ota-c: kept ota_app-2.0", "ota-d: kept ota_app-2.0"]
    assert "100%" in done.stderr  # the progress bars
    for r in devices:
        assert r.dev.boots[-1]["version"] == "ota_app-2.0"


def test_epx_ota_through_a_tls_broker(device, broker_tls, mqtt_watch, test_ca, tmp_path, ntp):
    r = Rig(device, broker_tls, mqtt_watch(broker_tls), name="ota-tls", files={"ca.der": test_ca.ca_der},
            mqttbroker="localhost", mqttca="ca.der", ntpserver=ntp.server)
    cfg = tmp_path / "c.txt"
    cfg.write_text(r.config_text)
    app_bin = tmp_path / "app.bin"
    app_bin.write_bytes(image("2.0"))
    argv = [sys.executable, "-m", "epx", "ota", str(app_bin), str(cfg), "--serve-host", "127.0.0.1",
            "--timeout", "60"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1 and "give --cafile" in done.stderr
    done = subprocess.run(argv + ["--cafile", test_ca.ca_path], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "ota-tls: kept ota_app-2.0"


def test_epx_ota_refuses_what_is_not_an_app_image(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xe9" + bytes(100))
    cfg = tmp_path / "c.txt"
    cfg.write_text("mqttname x\nota_key k\nmqttbroker 127.0.0.1\n")
    for data, error in ((b"hello", "not an ESP32 app image"), (b"\xe9" + bytes(100), "app image"),
                        (image("2.0")[:-1], "app image")):
        junk.write_bytes(data)
        done = subprocess.run([sys.executable, "-m", "epx", "ota", str(junk), str(cfg)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 1 and error in done.stderr, done.stderr
    cfg.write_text("mqttname x\n")
    junk.write_bytes(image("2.0"))
    done = subprocess.run([sys.executable, "-m", "epx", "ota", str(junk), str(cfg)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "no ota_key" in done.stderr


def test_loop_and_watchdog_alive_while_a_transfer_stalls(rig):
    r = rig(ota_timeout_s=120, watchdog=1)
    good = image("2.0")
    stall = RawServer(f"HTTP/1.0 200 OK\r\nContent-Length: {len(good)}\r\n\r\n".encode(),
                      good[:50000], None)
    result = []
    try:
        img = ota.load_image(good)
        th = threading.Thread(target=lambda: result.append(
            ota.rollout([r.target], img, url=stall.url(), stall_timeout=30)))
        mark = r.watch.mark()
        th.start()
        r.status("downloading", since=mark)
        # 60 s of device time with the transfer stuck: the watchdog (15 s) stays fed and
        # commands are answered
        r.dev.advance(60000)
        r.watch.publish(f"cmnd/{r.name}/OTA", "getversion")
        r.watch.wait_for(f"stat/{r.name}/Log", lambda p: p == "ota_app-1.0", since=mark, device=r.dev)
        r.dev.advance(70000)  # past ota_timeout_s
        th.join(30)
    finally:
        stall.close()
    assert result[0][0].outcome == "failed" and "stalled at 50000" in result[0][0].error
    assert len(r.dev.boots) == 1


def test_epx_ota_waits_for_an_offline_device(broker):
    t = ota.Target("ghost", KEY, broker.host, broker.port, None, None)
    result = ota.rollout([t], ota.load_image(image("2.0")), serve_host="127.0.0.1", accept_timeout=0.5)
    assert result == [ota.Result("ghost", "timeout", None, "device offline (stat/ghost/LWT)")]


# --- anti-rollback --------------------------------------------------------------------

def with_secure_version(data, n):
    """The same image with secure_version n in its app descriptor (esptool recomputes the
    checksum and digest), as a release that raises the floor would be built."""
    desc, exe = appimage.read(data)
    return appimage.build(exe, desc["version"], secure_version=n)


def test_versions_order_by_release_then_commits(tmp_path):
    from fwcode import last_json, run_code

    ascending = ["p-0.1.0-0-gabc", "p-0.1.0-3-gabc1234", "p-0.1.0-12-gdef", "p-0.2",
                 "p-0.10.0", "p-1.0", "p-1.0.1-1-g9", "p-2.0", "p-10.0"]
    same = [("p-2.0", "p-2.0-crash"), ("p-2.0", "p-2.0+"), ("p-2.0", "p-2.0.0"),
            ("p-0.1.0", "p-0.1.0-0-gabc"), ("p-1.2.0-3-gabc+", "p-1.2.0-3-gdef")]
    unordered = ["p-abc", "p", "p-1.x", "p-v1.0"]
    exe = build.build_unix("coreunit")[0]
    keys = last_json(run_code(exe, "import sys;sys.path[:]=['.frozen'];import json\n"
                                   "from epx import ota\n"
                                   f"print(json.dumps([ota.order(v) for v in {ascending + [v for p in same for v in p] + unordered!r}]))",
                              tmp_path))
    ranks = [tuple(k) if k else None for k in keys]
    asc = ranks[:len(ascending)]
    assert all(a < b for a, b in zip(asc, asc[1:])), list(zip(ascending, asc))
    pairs = ranks[len(ascending):len(ascending) + 2 * len(same)]
    assert [pairs[i] == pairs[i + 1] for i in range(0, len(pairs), 2)] == [True] * len(same)
    assert ranks[-len(unordered):] == [None] * len(unordered)


def test_downgrade_refused_unless_the_signed_request_allows_it(rig):
    r = rig(start="2.0")
    old = image("1.0")
    server = ota.ImageServer(old)
    url = server.url("127.0.0.1")
    otadata = r.dev.flash.read("otadata")
    try:
        status = ask(r, old, url)
        assert status == {"state": "refused", "error":
                          "ota_app-1.0 is older than the running ota_app-2.0: allow_downgrade to install it"}
        # the permission is signed: added to a request signed without it, the MAC fails
        t = r.target
        req = ota.request(t, ota.load_image(old), url, next(COUNTERS))
        req["allow_downgrade"] = True
        link = ota.Link(t)
        try:
            link.send(req)
            assert link.next(30) == {"state": "refused", "error": "bad hmac"}
        finally:
            link.close()
        assert r.dev.flash.read("otadata") == otadata and len(r.dev.boots) == 1
    finally:
        server.close()
    result = ota.rollout([r.target], ota.load_image(old), serve_host="127.0.0.1",
                         comeback_timeout=60, allow_downgrade=True)[0]
    assert result == ota.Result("ota1", "kept", "ota_app-1.0", None), r.dev.output()


def test_secure_version_floor_holds_even_with_allow_downgrade(rig):
    r = rig(start="2.0")
    assert r.update(with_secure_version(image("3.0"), 2)).outcome == "kept", r.dev.output()
    assert r.dev.nvs()["ota"]["floor"] == ["i32", 2]  # raised when 3.0 was marked valid
    otadata, boots = r.dev.flash.read("otadata"), len(r.dev.boots)
    old = image("2.0")
    server = ota.ImageServer(old)
    try:
        status = ask(r, old, server.url("127.0.0.1"), allow_downgrade=True,
                     counter=int(time.time()) + 1)  # above the update's (Unix time)
    finally:
        server.close()
    assert status == {"state": "failed", "version": "ota_app-2.0",
                      "error": "image has secure version 0, this device's floor is 2"}
    assert r.dev.flash.read("otadata") == otadata and len(r.dev.boots) == boots
    # a release at the floor may still be installed (and an older one, when allowed)
    again = with_secure_version(old, 2)
    result = ota.rollout([r.target], ota.load_image(again), serve_host="127.0.0.1",
                         comeback_timeout=60, allow_downgrade=True)[0]
    assert result.outcome == "kept", r.dev.output()
