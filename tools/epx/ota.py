"""`epx ota`: update devices over the air with a whole app image.

For each device (named by its config.txt: mqttname, ota_key, mqttbroker, ...) the image is
served over HTTP from this host (or taken from a URL), the request is signed with the
device's key and published on cmnd/<n>/OTA; the device's JSON status on stat/<n>/OTA
drives a progress bar and tells how it ended: kept (the new version passed its health
check), rolled back, refused or failed. Several devices: the first is the canary, the rest
follow only if it comes back healthy.
"""

import hashlib
import hmac
import http.server
import json
import os
import queue
import re
import socket
import sys
import threading
import time
from collections import namedtuple

from .errors import EpxError

Target = namedtuple("Target", "name key broker port user password cafile healthy_s",
                    defaults=(None, 60))  # healthy_s: its config's ota_healthy_s
Image = namedtuple("Image", "data version profile sha256")
Result = namedtuple("Result", "name outcome version error")  # outcome: kept, rolled back, refused, failed, timeout, offered

ACCEPT_TIMEOUT = 30.0  # the device answers a request
STALL_TIMEOUT = 120.0  # no progress during the transfer
COMEBACK_TIMEOUT = 900.0  # reboot, reconnect and health check
_REPLAYED = re.compile(r"replayed: counter -?\d+, last accepted (-?\d+)")


# --- inputs ------------------------------------------------------------------------

def read_config(path):
    """The `key value` lines of a device's config.txt."""
    values = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    key, _, value = line.partition(" ")
                    values[key] = value.strip()
    except OSError as e:
        raise EpxError(f"{path}: {e.strerror}")
    return values


def target(config_path, broker=None, cafile=None):
    """The device a config.txt describes, reached at its first mqttbroker node; broker
    "host[:port]" overrides mqttbroker; cafile (PEM) makes the connection TLS, as a config
    with mqttca has it."""
    c = read_config(config_path)
    for key in ("mqttname", "ota_key"):
        if not c.get(key):
            raise EpxError(f"{config_path}: no {key}")
    # Several nodes (a cluster): any of them reaches the device; the first is asked.
    host = broker or c.get("mqttbroker", "").split(",")[0].strip()
    if not host:
        raise EpxError(f"{config_path}: no mqttbroker (or give --broker)")
    port = int(c.get("mqttport") or 1883)
    if ":" in host:
        host, _, p = host.rpartition(":")
        port = int(p)
    if c.get("mqttca") and not cafile:
        raise EpxError(f"{config_path}: the broker wants TLS (mqttca): give --cafile")
    healthy = c.get("ota_healthy_s", "60")
    return Target(c["mqttname"], c["ota_key"], host, port, c.get("mqttuser"), c.get("mqttpassword"),
                  cafile, int(healthy) if healthy.isdigit() else 60)


def load_image(data):
    """An ESP32 app image (micropython.bin or a simulator app.bin): checked as esptool does,
    with its app descriptor's version. The profile is the version up to its first '-'."""
    from .sim import appimage

    if isinstance(data, (str, os.PathLike)):
        try:
            with open(data, "rb") as f:
                data = f.read()
        except OSError as e:
            raise EpxError(f"{data}: {e.strerror}")
    if not data or data[0] != 0xE9:
        raise EpxError("not an ESP32 app image (first byte is not 0xE9)")
    image = appimage.load(data)
    end = image.data_length + 32
    if len(data) != end:
        raise EpxError(f"app image: {len(data)} bytes, its layout says {end}")
    desc = appimage.parse_descriptor(image.segments[0].data)
    version = desc["version"]
    if "-" not in version:
        raise EpxError(f"app image: version {version!r} does not start with a profile name")
    return Image(bytes(data), version, version.split("-", 1)[0], image_sha256(data))


def image_sha256(data):
    """What a request names an image by: its appended SHA-256, the SHA-256 of every byte
    before it (the device checks both and the size, in one hash pass)."""
    return hashlib.sha256(data[:-32]).hexdigest()


def message(name, req, verb="ota"):
    """What the HMAC of a request (verb "ota") or an offer ("offer") covers (epx.ota.message
    on the device)."""
    return (f"{name} {verb} {req['url']} {req['size']} {req['sha256']} {req['profile']} "
            f"{req['version']} {req['counter']}" + (" allow-downgrade" if req.get("allow_downgrade") else "")
            + (" " + req["release_url"] if req.get("release_url") else ""))


def request(t, image, url, counter, allow_downgrade=False, verb="ota", release_url=None):
    """The signed request; allow_downgrade lets the device install a version older than the
    one it runs (never one below its secure version floor). verb "offer": an offer for the
    device's update entity, with release_url its release notes."""
    if not 0 <= counter < 2**64:
        raise EpxError(f"counter {counter}: must be 0..2**64-1")
    req = {"url": url, "size": len(image.data), "sha256": image.sha256, "profile": image.profile,
           "version": image.version, "counter": counter}
    if allow_downgrade:
        req["allow_downgrade"] = True
    if release_url:
        if not re.fullmatch(r"https?://\S+", release_url):
            raise EpxError(f"release notes URL {release_url!r}: not an http(s) URL")
        req["release_url"] = release_url
    req["hmac"] = hmac.new(t.key.encode(), message(t.name, req, verb).encode(),
                           hashlib.sha256).hexdigest()
    return req


# --- serving the image -------------------------------------------------------------

class ImageServer:
    """The image over HTTP/1.0 on (host, port), at /<sha256 prefix>.bin; counts requests."""

    def __init__(self, data, host="0.0.0.0", port=0):
        self.data = data
        self.path = "/" + hashlib.sha256(data).hexdigest()[:16] + ".bin"
        self.gets = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != server.path:
                    self.send_error(404)
                    return
                server.gets += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(server.data)))
                self.end_headers()
                try:
                    self.wfile.write(server.data)
                except OSError:
                    pass  # the device went away

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, host):
        return f"http://{host}:{self.port}{self.path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def local_address(remote_host, remote_port=1883):
    """This host's address on the route to remote_host (what a device there can reach)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((remote_host, remote_port))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


# --- one device --------------------------------------------------------------------

class Link:
    """A paho client subscribed to a device's stat/<n>/OTA; statuses arrive on a queue."""

    def __init__(self, t):
        import paho.mqtt.client as mqtt

        self.t = t
        self.statuses = queue.Queue()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"epx-ota-{os.getpid()}-{id(self) & 0xFFFFFF:x}")
        if t.user:
            self.client.username_pw_set(t.user, t.password)
        if t.cafile:
            self.client.tls_set(ca_certs=t.cafile)
        self.online = threading.Event()  # the device's last will says Online (retained)
        self.updates = queue.Queue()  # the update entity's states (stat/<n>/Update)
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(f"stat/{t.name}/OTA", 1), (f"stat/{t.name}/LWT", 1), (f"stat/{t.name}/Update", 1)])
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        try:
            self.client.connect(t.broker, t.port, keepalive=30)
        except OSError as e:
            raise EpxError(f"{t.name}: broker {t.broker}:{t.port}: {e}")
        self.client.loop_start()
        if not self._ready.wait(ACCEPT_TIMEOUT):  # a busy broker or host: not a dead one
            self.close()
            raise EpxError(f"{t.name}: no subscription on broker {t.broker}:{t.port}")

    def _on_message(self, client, userdata, msg):
        if msg.topic.endswith("/LWT"):
            (self.online.set if msg.payload == b"Online" else self.online.clear)()
            return
        if msg.retain:
            return
        try:
            status = json.loads(msg.payload)
        except ValueError:
            return
        if msg.topic.endswith("/Update"):
            self.updates.put(status)
        elif isinstance(status, dict) and "state" in status:
            self.statuses.put(status)

    def send(self, req, name="OTA", retain=False):
        self.client.publish(f"cmnd/{self.t.name}/{name}", json.dumps(req), qos=1,
                            retain=retain).wait_for_publish(10)

    def next(self, timeout):
        try:
            return self.statuses.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def update(t, image, url, counter=None, progress=None, accept_timeout=ACCEPT_TIMEOUT,
           stall_timeout=STALL_TIMEOUT, comeback_timeout=COMEBACK_TIMEOUT, allow_downgrade=False,
           say=None):
    """Update one device; a Result. progress(name, done, size) follows the transfer;
    say(text) hears what the wait after it is for."""
    link = Link(t)
    try:
        if not link.online.wait(accept_timeout):
            return Result(t.name, "timeout", None, "device offline (stat/%s/LWT)" % t.name)
        counter = int(time.time()) if counter is None else counter
        for attempt in range(2):
            link.send(request(t, image, url, counter, allow_downgrade))
            status = link.next(accept_timeout)
            if status is None:
                return Result(t.name, "timeout", None, "no answer to the request")
            replayed = _REPLAYED.search(status.get("error", ""))
            if status["state"] == "refused" and replayed and attempt == 0:
                counter = int(replayed.group(1)) + 1  # our clock is behind the device's counter
                continue
            break
        return _follow(t, link, status, image, progress, stall_timeout, comeback_timeout, say)
    finally:
        link.close()


def waiting(t, image, comeback_timeout, now=None):
    """What the wait for a device that reboots into a new image is for, and until when."""
    until = time.strftime("%H:%M:%S", time.localtime((now or time.time()) + comeback_timeout))
    return (f"{t.name}: {image.version} written, rebooting into it: the device keeps it once "
            f"healthy (network, broker, config) for {t.healthy_s} s, else rolls back; "
            f"waiting until {until} (--timeout {comeback_timeout:g} s)")


def _follow(t, link, status, image, progress, stall_timeout, comeback_timeout, say=None):
    timeout, rebooting = stall_timeout, False
    while True:
        state = status["state"]
        if state in ("refused", "failed") and not rebooting:
            return Result(t.name, state, None, status.get("error"))
        if state == "downloading" and progress:
            progress(t.name, status.get("done", 0), status.get("size", len(image.data)))
        if state == "rebooting":
            if not rebooting and say:
                say(waiting(t, image, comeback_timeout))
            timeout, rebooting = comeback_timeout, True
        # What a boot says about an earlier update is not about this one.
        if rebooting and state == "kept" and status.get("version") == image.version:
            return Result(t.name, "kept", status.get("version"), None)
        if rebooting and state == "rolled back" and status.get("failed") == image.version:
            return Result(t.name, "rolled back", status.get("version"),
                          f"{image.version} did not stay")
        status = link.next(timeout)
        if status is None:
            what = "come back" if rebooting else "make progress"
            return Result(t.name, "timeout", None, f"did not {what} within {timeout:.0f} s")


# --- an offer for Home Assistant ---------------------------------------------------

def offer(t, image, url, counter=None, release_url=None, allow_downgrade=False,
          timeout=ACCEPT_TIMEOUT):
    """Offer image at url to one device's update entity: signed, retained on
    cmnd/<n>/Offer (where the device finds it whenever it connects); a Result whose outcome
    is "offered" once the device showed it, "refused" with its reason, or "timeout" (the
    offer stays on the broker for when the device comes)."""
    link = Link(t)
    try:
        online = link.online.wait(timeout)
        counter = int(time.time()) if counter is None else counter
        deadline = time.monotonic() + timeout
        for attempt in range(2):
            link.send(request(t, image, url, counter, allow_downgrade, "offer", release_url),
                      "Offer", retain=True)
            if not online:
                return Result(t.name, "timeout", None, "device offline: the offer waits on the broker")
            note = _shown(link, image.version, deadline)
            if note is None:
                return Result(t.name, "offered", image.version, None)
            replayed = _REPLAYED.search(note)
            if not (replayed and attempt == 0):
                return Result(t.name, "refused" if note else "timeout", None,
                              note or "the device did not show the offer")
            counter = int(replayed.group(1)) + 1  # our clock is behind the device's counter
    finally:
        link.close()


def _shown(link, version, deadline):
    # None once the update entity shows version offered, else its refusal ("" on timeout).
    while True:
        try:
            state = link.updates.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return ""
        note = state.get("release_summary") or ""
        if note.startswith("Offer refused"):
            return note
        if state.get("latest_version") == version:
            return None


# --- several devices ----------------------------------------------------------------

def rollout(targets, image, url=None, serve_host=None, progress=None, **kw):
    """Update targets, the first alone: the rest only if it was kept. Results in order;
    devices not tried for lack of a healthy canary are left out."""
    server = None
    try:
        if url is None:
            server = ImageServer(image.data)
            url = server.url(serve_host or local_address(targets[0].broker, targets[0].port))
        results = [update(targets[0], image, url, progress=progress, **kw)]
        if results[0].outcome != "kept" or len(targets) == 1:
            return results
        rest = [None] * (len(targets) - 1)

        def one(i):
            rest[i] = update(targets[i + 1], image, url, progress=progress, **kw)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(rest))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return results + rest
    finally:
        if server is not None:
            server.close()


class ProgressBar:
    """One line per device on a terminal: name [#####.....] 45%."""

    def __init__(self, out=sys.stderr, width=30):
        self.out, self.width = out, width
        self._lock = threading.Lock()

    def __call__(self, name, done, size):
        frac = done / size if size else 1
        bar = "#" * int(frac * self.width)
        with self._lock:
            self.out.write(f"\r{name} [{bar:<{self.width}}] {frac * 100:3.0f}% {done // 1024}/{size // 1024} KB")
            if done >= size:
                self.out.write("\n")
            self.out.flush()


def describe(r, image):
    if r.outcome == "offered":
        return f"{r.name}: offered {r.version}"
    if r.outcome == "kept":
        return f"{r.name}: kept {r.version}"
    if r.outcome == "rolled back":
        return f"{r.name}: rolled back, running {r.version} ({image.version} did not stay)"
    return f"{r.name}: {r.outcome}: {r.error}"
