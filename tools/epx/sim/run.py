"""`epx sim`: one simulated appliance with a local mosquitto, printing what it says and publishes."""

import fcntl
import os
import re
import secrets
import socket
import shutil
import signal
import sys
import threading
import time

from .. import build, secver
from ..errors import EpxError
from ..paths import BUILD, ROOT, rel
from . import appimage, net, ntp, worlds
from .device import Device, SimTimeout
from .medium import Medium


def app_image(profile):
    """Build the profile's host firmware and write build/unix-<profile>/app.bin."""
    exe, _ = build.build_unix(profile)
    out = exe.parent / "app.bin"
    tmp = exe.parent / f"app.bin.{os.getpid()}"
    data = appimage.write(exe, build.firmware_version(profile), tmp,
                          secure_version=secver.configured())
    os.replace(tmp, out)
    return out, data


def with_keys(config, **keys):
    """config.txt text with each key set to its value (replaced, else appended)."""
    for key, value in keys.items():
        line = f"{key} {value}"
        if re.search(rf"(?m)^\s*{key}\b", config):
            config = re.sub(rf"(?m)^\s*{key}\b.*$", line, config)
        else:
            config = config.rstrip("\n") + "\n" + line + "\n"
    return config


def with_broker(config, host, port):
    """config.txt text with `mqttbroker` and `mqttport` set to host and port."""
    return with_keys(config, mqttbroker=host, mqttport=str(port))


def default_config(profile):
    path = ROOT / "profiles" / profile / "config.txt.example"
    if not path.exists():
        raise EpxError(f"{rel(path)}: missing; give --config FILE")
    return path.read_text()


PAYLOAD_SHOWN = 100  # characters of a long payload (discovery configs) shown on the console
DISPLAY_EVERY_S = 20  # real seconds between looks at the display (printed if it changed)


def shown(payload):
    text = payload.decode("utf-8", "replace")
    if len(text) > PAYLOAD_SHOWN:
        return f"{text[:PAYLOAD_SHOWN - 40]}... ({len(payload)} bytes)"
    return text


class Sleeper(Device):
    """A device whose deep sleep takes its (scaled) time, as a real one's does, and which may
    wake any number of times: the demo's battery sensor wakes every `sleep` minutes."""

    def __init__(self, folder, **kw):
        super().__init__(folder, max_boots=1 << 30, **kw)

    def _take_deepsleep(self):
        ms = super()._take_deepsleep()
        if ms:
            with self._cv:
                self._cv.wait_for(lambda: self._stopping, ms / 1000 / self.world["clock_scale"])
        return ms


class Demo:
    """The device, its demo world (worlds.py) and an optional ESP-NOW peer, with what they
    print: console lines, and the display's text when it changes."""

    def __init__(self, profile, text, folder, host, port, say, bare_world=False, **kw):
        self.entry = {} if bare_world else worlds.world(profile, text)
        self.say = say
        self.devices = []  # (device, world entry, its live inputs)
        medium = Medium() if "peer" in self.entry else None
        main = self._device(profile, folder, with_broker(text, host, port), self.entry,
                            medium=medium, **kw)
        main.world["wifi"].update(worlds.networks(text))
        peer = self.entry.get("peer")
        if peer:
            medium.channels[main.mac] = int(worlds.config_value(text, "channel") or 1)
            _, data = app_image(peer["profile"])
            self._device(peer["profile"], f"{folder}-{peer['profile']}",
                         with_keys(default_config(peer["profile"]), **peer.get("config", {})),
                         peer, medium=medium, data=data, kind=Sleeper,
                         **({"heapsize": kw["heapsize"]} if "heapsize" in kw else {}))
        self.main = main
        self.display = None

    def _device(self, profile, folder, config, entry, data=None, kind=Device, **kw):
        shutil.rmtree(folder, ignore_errors=True)
        if data is None:
            _, data = app_image(profile)
        if entry.get("mac"):
            kw["mac"] = entry["mac"]
        dev = kind.create(folder, data, files={"config.txt": config}, name=profile,
                            on_console=lambda d, line: self.say(f"[{profile}] {line}"), **kw)
        worlds.attach(dev, entry)
        self.devices.append((dev, entry, worlds.Live(entry)))
        return dev

    def start(self, speed=None):
        for dev, entry, _ in self.devices:
            if speed:
                dev.world["clock_scale"] = speed  # device seconds per real second, from boot
            if not entry.get("after"):
                dev.start()

    def tick(self, look=False):
        """Live inputs that fell due; with `look`, the display's text if it changed. The
        reason the run ended, or None."""
        for dev, entry, live in self.devices:
            if entry.get("after") and not dev.boots and re.search(entry["after"], self.main.output()):
                dev.start()
            live.tick(dev)
            if dev.ended:
                return f"{dev.name}: {dev.ended}"
        name = self.entry.get("display")
        if look and name:
            try:
                text = self.main.call("model.call", name=name, method="text", args=[], timeout=5)
            except (EpxError, SimTimeout):
                return None  # rebooting
            if text != self.display:
                self.display = text
                self.say(f"[display] {' | '.join(line.strip() for line in text)}")
        return None

    def stop(self):
        for dev, _, _ in self.devices:
            dev.stop()


def printer(host, port, topics, show):
    """A paho-mqtt client that hands every message on `topics` to show(message)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"epx-sim-{os.getpid()}")
    client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics])
    client.on_message = lambda c, u, m: show(m)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    return client


def device_folder(profile, folder=None):
    """(folder, its lock): a device folder no other `epx sim` uses, locked for this run (the
    lock goes with the process). build/sim/<profile>, else <profile>-2, -3, ...; a --dir
    in use is refused."""
    if folder:
        candidates = [str(folder)]
    else:
        base = BUILD / "sim"
        candidates = [str(base / profile)] + [str(base / f"{profile}-{n}") for n in range(2, 100)]
    for path in candidates:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        lock = open(path + ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return path, lock
    raise EpxError(f"{rel(candidates[0])}: another epx sim runs on this device folder"
                   if folder else f"{rel(BUILD / 'sim')}: 98 runs of {profile} at once")


def broker_address(broker):
    """(host, port) of --broker HOST[:PORT], checked to accept connections."""
    host, _, port = broker.rpartition(":") if ":" in broker else (broker, "", "1883")
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise EpxError(f"--broker {broker}: expected HOST[:PORT]")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise EpxError(f"--broker {broker}: {e.strerror or e} (is an MQTT broker running there?)")
    return host, int(port)


class PortalView:
    """The setup portal on the host: when the device's access point opens, a simulated
    station joins it (with appassword, as a phone would) and the page's host address is
    printed for the user's own browser; it closes with the access point."""

    OPEN = re.compile(r"ap: (\S+) open, portal on (http://\S+)")
    CLOSED = re.compile(r"ap: closed")

    def __init__(self, dev, password, say):
        self.dev, self.password, self.say = dev, password, say
        self.seen = 0
        self.opened = None  # (boot, the AP's name, its URL) waiting to be joined
        self.shown = None  # the boot whose page was printed

    def tick(self):
        dev = self.dev
        for number, boot, text in list(dev.console):
            if number <= self.seen:
                continue
            self.seen = number
            m = self.OPEN.search(text)
            if m:
                self.opened = (boot, m.group(1), m.group(2))
            elif self.CLOSED.search(text) and self.shown == boot:
                self.gone("the access point closed")
        if self.shown is not None and self.shown != len(dev.boots):
            self.gone("the device rebooted")
        if self.opened is None or self.opened[0] != len(dev.boots):
            self.opened = None
            return
        _, ssid, url = self.opened
        try:
            dev.join_ap(self.password)
            addr = dev.portal_address()
        except (EpxError, SimTimeout) as e:
            self.say(f"epx sim: could not join the access point {ssid}: {e}")
            addr = None
        self.opened = None
        if addr:
            self.shown = len(dev.boots)
            self.say(f"epx sim: setup page: http://{addr[0]}:{addr[1]}/ (the device's {url} as a "
                     f"phone on its access point {ssid} sees it; appassword {self.password})")

    def gone(self, why):
        self.shown = None
        self.say(f"epx sim: {why}: the setup page is gone")


def run(profile, config=None, broker=None, heapsize=None, speed=None, folder=None, out=sys.stdout,
        bare_world=False):
    build.manifest_of(profile)  # an unknown profile is named as such
    if config:
        try:
            with open(config) as f:
                text = f.read()
        except OSError as e:
            raise EpxError(f"--config {config}: {e.strerror}")
    else:
        text = default_config(profile)
    host = port = None
    if broker:
        host, port = broker_address(broker)
    image, _ = app_image(profile)
    # The demo device can be tried as the README shows: a key for signed commands, an access
    # point password for the setup portal (each generated unless config.txt has one).
    generated = {}
    for key in ("ota_key", "appassword"):
        if not worlds.config_value(text, key):
            generated[key] = secrets.token_urlsafe(12)
    text = with_keys(text, **generated)
    ota_key, appassword = (worlds.config_value(text, k) for k in ("ota_key", "appassword"))
    name = worlds.config_value(text, "mqttname") or profile
    folder, lock = device_folder(profile, folder)
    mosquitto = ntp_server = demo = watch = None
    lines = threading.Lock()

    def say(text):
        with lines:
            print(text, file=out, flush=True)

    try:
        if not broker:
            mosquitto = net.Broker().start()
            host, port = mosquitto.host, mosquitto.port
        ntp_server = ntp.NtpServer()  # the host's clock, for the device's sntp
        text = with_keys(text, ntpserver=ntp_server.server)
        kw = {"heapsize": heapsize} if heapsize else {}
        demo = Demo(profile, text, folder, host, port, say, bare_world, **kw)
        portal = PortalView(demo.main, appassword, say)
        watch = printer(host, port, ("stat/#", "homeassistant/#", "tele/#"), lambda m: say(
            f"[mqtt] {m.topic}{' (retained)' if m.retain else ''} {shown(m.payload)}"))
        say(f"epx sim: {profile} ({rel(image)}) in {rel(folder)}, broker {host}:{port}")
        models = ", ".join(f"{m['model']}@{m['bus']}" for m in demo.main.world["models"])
        peer = demo.entry.get("peer")
        say(f"epx sim: world: {models or 'no device models'}"
            + (f"; a {peer['profile']} device over ESP-NOW" if peer else "")
            + (" (--bare-world)" if bare_world else "") + f"; NTP at {ntp_server.server}")
        say(f"epx sim: watch with: mosquitto_sub -h {host} -p {port} -v -t 'stat/#' -t 'homeassistant/#'")
        say(f"epx sim: ota_key {ota_key}"
            + (" (generated: config.txt had none)" if "ota_key" in generated else ""))
        say(f"epx sim: in another shell: . .venv/bin/activate; "
            f"export BROKER={host}:{port} OTA_KEY={ota_key}")
        say(f"epx sim: then try: epx cmd --broker \"$BROKER\" --name {name} --key \"$OTA_KEY\" reboot")
        demo.start(speed)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        looked = time.monotonic()
        while not stop.wait(0.5):
            look = time.monotonic() - looked >= DISPLAY_EVERY_S
            if look:
                looked = time.monotonic()
            ended = demo.tick(look)
            if ended:
                say(f"epx sim: device stopped: {ended}")
                return 1
            portal.tick()
    except KeyboardInterrupt:
        pass
    except (OSError, SimTimeout) as e:
        raise EpxError(f"sim: {str(e).splitlines()[0]}")
    finally:
        if demo:
            demo.stop()
        if watch:
            watch.loop_stop()
            watch.disconnect()
        if ntp_server:
            ntp_server.close()
        if mosquitto:
            mosquitto.stop()
        lock.close()
    return 0
