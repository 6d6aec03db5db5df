"""`epx sim`: one simulated appliance with a local mosquitto, printing what it says and publishes."""

import os
import re
import shutil
import signal
import sys
import threading

from .. import build
from ..errors import EpxError
from ..paths import BUILD, ROOT, rel
from . import appimage, net
from .device import Device


def app_image(profile):
    """Build the profile's host firmware and write build/unix-<profile>/app.bin."""
    exe, _ = build.build_unix(profile)
    out = exe.parent / "app.bin"
    tmp = exe.parent / f"app.bin.{os.getpid()}"
    data = appimage.write(exe, build.firmware_version(profile), tmp)
    os.replace(tmp, out)
    return out, data


def with_broker(config, host, port):
    """config.txt text with `mqttbroker` and `mqttport` set to host and port."""
    for key, value in (("mqttbroker", host), ("mqttport", str(port))):
        line = f"{key} {value}"
        if re.search(rf"(?m)^\s*{key}\b", config):
            config = re.sub(rf"(?m)^\s*{key}\b.*$", line, config)
        else:
            config = config.rstrip("\n") + "\n" + line + "\n"
    return config


def default_config(profile):
    path = ROOT / "profiles" / profile / "config.txt.example"
    if not path.exists():
        raise EpxError(f"{rel(path)}: missing; give --config FILE")
    return path.read_text()


def run(profile, config=None, broker=None, heapsize=None, speed=None, folder=None, out=sys.stdout):
    image, data = app_image(profile)
    text = open(config).read() if config else default_config(profile)
    mosquitto = None
    if broker:
        host, _, port = broker.partition(":")
        port = int(port or 1883)
    else:
        mosquitto = net.Broker().start()
        host, port = mosquitto.host, mosquitto.port
    folder = folder or BUILD / "sim" / profile
    shutil.rmtree(folder, ignore_errors=True)
    lock = threading.Lock()

    def say(text):
        with lock:
            print(text, file=out, flush=True)

    kw = {"heapsize": heapsize} if heapsize else {}
    dev = Device.create(folder, data, files={"config.txt": with_broker(text, host, port)},
                        name=profile, on_console=lambda d, line: say(f"[{profile}] {line}"), **kw)
    if speed:
        dev.world["clock_scale"] = speed  # device seconds per real second, from the first boot
    watch = None
    try:
        watch = net.MqttWatch(host, port, ("stat/#", "homeassistant/#", "tele/#"))
        watch.client.on_message = lambda c, u, m: say(
            f"[mqtt] {m.topic}{' (retained)' if m.retain else ''} {m.payload.decode('utf-8', 'replace')}")
        say(f"epx sim: {profile} ({rel(image)}) in {rel(folder)}, broker {host}:{port}")
        say(f"epx sim: watch with: mosquitto_sub -h {host} -p {port} -v -t 'stat/#' -t 'homeassistant/#'")
        dev.start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        while not stop.wait(0.5):
            if dev.ended:
                say(f"epx sim: device stopped: {dev.ended}")
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        dev.stop()
        if watch:
            watch.close()
        if mosquitto:
            mosquitto.stop()
    return 0
