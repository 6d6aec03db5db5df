# Full-image OTA. A request on cmnd/<n>/OTA is a JSON object
#     {"url": "http://host:port/app.bin", "size": n, "sha256": "<hex>", "profile": "h2o",
#      "version": "h2o-1.2.0", "counter": c, "hmac": "<hex>"[, "allow_downgrade": true]}
# hmac = HMAC-SHA256(ota_key, "<mqttname> ota <url> <size> <sha256> <profile> <version>
# <counter>[ allow-downgrade]"); counter below 2**64, above the last one accepted
# (epx.replay, shared with signed diagnostics). Anti-rollback: a version older than the
# running one (order()) needs allow_downgrade; an image whose app descriptor's
# secure_version is below the floor (NVS ota/floor, raised to the running image's
# secure_version whenever an image is marked valid) is refused whatever the request says.
# sha256 is the image's appended SHA-256 (of every byte before it; `esptool image-info`'s
# validation hash) and size the whole file's length: together they fix every byte.
# The image streams into the next OTA partition (epx.otawrite checks it) and only then
# becomes the boot partition. After the reboot it runs pending verification: kept once the
# device has been healthy (network, broker, config) for ota_healthy_s, reset otherwise so
# the bootloader rolls back; the image that finds itself running instead of the one it
# installed reports the rollback. Everything is reported on stat/<n>/OTA as JSON.
# An offer (epx.update) is the same JSON signed with "offer" for "ota"; install() runs it.
import binascii
import json
import sys
from esp32 import Partition

from epx import appimage, config, log, loop, otawrite, replay
from epx.nvram import NVRAM
from epx.version import PROFILE, VERSION

OTA_KEY = config.key("ota_key", str, None, "OTA key|||Signs updates and dangerous commands; empty: they are refused", secret=True)  # signs updates and dangerous diagnostics
HEALTHY_S = config.key("ota_healthy_s", config.int_range(1, 3600), 60, "Update healthy after|s|60|Online this long: a new firmware is kept; 1-3600")
VERIFY_S = config.key("ota_verify_s", config.int_range(60, 86400), 600, "Update deadline|s|600|Not healthy by then: back to the old firmware; 60-86400")
TIMEOUT_S = config.key("ota_timeout_s", config.int_range(1, 600), 20, "Update read timeout|s|20|Each read of the image; 1-600")

_CHECK_MS = const(1000)
_SENT_MS = const(500)  # from a status handed to the socket to the reset
_REBOOT_MS = const(5000)  # reset anyway when the status cannot be sent
_MAX_REQUEST = const(896)  # one MQTT packet (epx.mqtt max_packet 1024) less topic and header
_PROGRESS_STEP = const(5)  # percent
_FIELDS = (("url", str), ("size", int), ("sha256", str), ("profile", str), ("version", str),
           ("counter", int), ("hmac", str))
_I32_MAX = const(0x7FFFFFFF)

_nv = NVRAM("ota")
_busy = False
_percent = -1
_healthy_ms = None  # uptime when the device last became healthy
_check = None
_pending = None  # the version the last update installed, until its outcome is settled
_observers = []


def status(state, sent=None, **fields):
    """A JSON status on stat/<n>/OTA; sent() once it has left."""
    from epx import mqtt

    for fn in _observers:
        fn(state, fields)
    fields["state"] = state
    mqtt.publish("OTA", json.dumps(fields), done=sent)


def _running_desc():
    # (version, project, secure_version) of the running image's app descriptor, or None.
    head = bytearray(112)
    Partition(Partition.RUNNING).readblocks(0, head)
    c = appimage.Check()
    try:
        c.feed(head)
    except ValueError:
        return None
    return c.desc


def running_version():
    """The version in the running image's app descriptor (what the bootloader booted)."""
    desc = _running_desc()
    return desc[0] if desc else VERSION


def floor():
    """The lowest secure_version this device installs (NVS ota/floor)."""
    return _nv.get_int("floor", 0)


def mark_valid():
    """Keep the running image (no rollback) and raise the floor to its secure_version."""
    Partition.mark_app_valid_cancel_rollback()
    desc = _running_desc()
    if desc and floor() < desc[2] <= _I32_MAX:
        _nv.set_int("floor", desc[2])
        log.info("ota: secure version floor raised to %d" % desc[2])


def order(version):
    """How versions compare: <profile>-<release>[-<n>-g<hash>][+] (`git describe`) orders
    by the release's dot-separated numbers (missing ones are 0), then by n, the commits
    since that release; other suffixes do not count. None when there is no release number."""
    rest = version.split("-")[1:]
    if not rest:
        return None
    numbers = rest[0].rstrip("+").split(".")
    if not all(n.isdigit() for n in numbers):
        return None
    numbers = [int(n) for n in numbers] + [0] * (4 - len(numbers))
    commits = 0
    if len(rest) > 2 and rest[1].isdigit() and rest[2][:1] == "g":
        commits = int(rest[1])
    return tuple(numbers + [commits])


# --- the request ---------------------------------------------------------------------


def request(text):
    """A JSON request from cmnd/<n>/OTA (never a retained one: epx.mqtt drops those)."""
    _start(lambda: _verify(text))


def install(offer):
    """Install an offer (epx.update) whose signature was checked and counter taken when it
    came: exactly its image, with every check of a request but those two."""
    _start(lambda: check(dict(offer), running_version()))


def observe(fn):
    """fn(state, fields) for each status (how an update entity follows the progress)."""
    _observers.append(fn)


def _start(verify):
    global _busy
    if _busy:
        return status("refused", error="an update is already running")
    if verifying():
        return status("refused", error="the running update is still on trial (health check)")
    try:
        req = verify()
    except ValueError as e:
        log.warn("ota: refused: %s" % e)
        return status("refused", error=str(e))
    _busy = True
    log.info("ota: %s from %s" % (req["version"], req["url"]))
    status("accepted", version=req["version"], size=req["size"])
    loop.task(_update(req))


def message(name, req, verb="ota"):
    """The text the HMAC of a request (verb "ota") or an offer ("offer") covers."""
    return "%s %s %s %d %s %s %s %d%s%s" % (
        name, verb, req["url"], req["size"], req["sha256"], req["profile"], req["version"],
        req["counter"], " allow-downgrade" if req.get("allow_downgrade") else "",
        " " + req["release_url"] if req.get("release_url") else "")


def signed(text, verb):
    """The JSON object of a request or an offer when it is well formed and its hmac is
    ota_key's; ValueError otherwise. Its counter is not taken here."""
    from epx import hmac, mqtt

    if len(text) > _MAX_REQUEST:
        raise ValueError("request longer than %d bytes" % _MAX_REQUEST)
    try:
        req = json.loads(text)
    except ValueError:
        raise ValueError("not JSON")
    if not isinstance(req, dict):
        raise ValueError("not a JSON object")
    for name, kind in _FIELDS:
        if not isinstance(req.get(name), kind) or isinstance(req[name], bool):
            raise ValueError("%s: missing or not %s" % (name, "a number" if kind is int else "text"))
        if kind is str and (not req[name] or any(c <= " " for c in req[name])):
            raise ValueError("%s: empty or with spaces" % name)
    if not isinstance(req.get("allow_downgrade", False), bool):
        raise ValueError("allow_downgrade: not true or false")
    notes = req.get("release_url")
    if notes is not None and not (isinstance(notes, str) and notes.startswith(
            ("http://", "https://")) and all(c > " " for c in notes)):
        raise ValueError("release_url: not an http(s) URL")
    key = OTA_KEY.value
    if not key:
        raise ValueError("no ota_key configured")
    mac = hmac.digest(key.encode(), message(mqtt.NAME.value, req, verb).encode())
    try:
        given = binascii.unhexlify(req["hmac"])
    except ValueError:
        given = b""
    if not hmac.compare_digest(mac, given):
        raise ValueError("bad hmac")
    return req


def _verify(text):
    req = signed(text, "ota")
    replay.commands().take(req["counter"])
    return check(req, running_version())


def check(req, running=None):
    """req (authentic) with its sha256 as bytes; ValueError when its content is not for
    this device. With the running version, also when it would not install over it."""
    if req["profile"] != PROFILE:
        raise ValueError("image for profile %s, this device runs %s" % (req["profile"], PROFILE))
    if not req["version"].startswith(PROFILE + "-"):
        raise ValueError("version %s does not name profile %s" % (req["version"], PROFILE))
    if running is not None:
        if req["version"] == running:
            raise ValueError("already running %s" % req["version"])
        new, now = order(req["version"]), order(running)
        if not req.get("allow_downgrade") and (new is None or now is None or new < now):
            raise ValueError("%s is %s the running %s: allow_downgrade to install it" % (
                req["version"], "older than" if new and now else "not comparable with", running))
    try:
        req["sha256"] = binascii.unhexlify(req["sha256"])
    except ValueError:
        req["sha256"] = b""
    if len(req["sha256"]) != 32:
        raise ValueError("sha256: not 64 hex digits")
    if req["size"] <= 0:
        raise ValueError("size: not positive")
    return req


# --- the transfer --------------------------------------------------------------------


def _progress(size):
    def report(done):
        global _percent
        p = done * 100 // size
        if p >= _percent + _PROGRESS_STEP or done == size:
            _percent = p
            status("downloading", done=done, size=size)

    return report


async def _update(req):
    global _busy, _percent
    version = req["version"]

    def accept(image_version, project, secure_version):
        if image_version != version:
            raise otawrite.Refused("image is %s, the request says %s" % (image_version, version))
        if secure_version < floor():  # no request crosses it, allow_downgrade included
            raise otawrite.Refused("image has secure version %d, this device's floor is %d" % (
                secure_version, floor()))

    _percent = -1
    try:
        part = Partition(Partition.RUNNING).get_next_update()
        await otawrite.write(part, req["url"], req["size"], req["sha256"], accept,
                             _progress(req["size"]), TIMEOUT_S.value * 1000)
        _nv.set_str("from", running_version())
        _nv.set_str("pending", version)  # from here a boot of anything else is a rollback
        try:
            part.set_boot()
        except OSError as e:
            raise otawrite.Refused("set_boot refused the image (%s)" % e)
    except Exception as e:  # a refusal, or anything else: the device must not stay half-updated
        _busy = False
        if _nv.get_str("pending") == version:
            _nv.erase("pending")
        if not isinstance(e, otawrite.Refused):
            sys.print_exception(e)
            e = repr(e)
        log.error("ota: %s failed: %s" % (version, e))
        return status("failed", version=version, error=str(e))
    log.info("ota: %s written to %s, rebooting" % (version, part.info()[4]))
    _reboot_after("OTA to " + version, "rebooting", version=version, slot=part.info()[4])


def _reboot_after(reason, state, **fields):
    # Once the status has left (or the broker is not taking it), reset.
    from epx import crash

    reboot = lambda: crash.reboot(reason)  # noqa: E731
    status(state, sent=lambda: loop.later(_SENT_MS, reboot), **fields)
    loop.later(_REBOOT_MS, reboot)


# --- after the reboot ----------------------------------------------------------------


_safe_mode = None  # () -> bool, from the app: a device in safe mode is never healthy


def start(safe_mode):
    """Called once MQTT starts: settle the outcome of an update from before this boot."""
    global _check, _pending, _safe_mode
    if _check is not None:
        return
    _safe_mode = safe_mode
    _pending = _nv.get_str("pending")
    if _pending is None:
        _check = loop.every(_CHECK_MS, _keep)  # marks the image valid once healthy
    elif _pending == running_version():
        log.info("ota: %s boots pending verification" % _pending)
        _check = loop.every(_CHECK_MS, _verify_boot)
    else:
        log.error("ota: %s was rolled back, running %s" % (_pending, running_version()))
        _check = loop.every(_CHECK_MS, _report_rollback)


def verifying():
    """Is this boot an update still on trial?"""
    return _pending is not None and _pending == running_version()


def healthy():
    """Network up, broker connected and a config that loaded."""
    from epx import mqtt, net

    return net.up() and mqtt.connected and not _safe_mode()


def _stable():
    global _healthy_ms
    if not healthy():
        _healthy_ms = None
        return False
    now = loop.uptime_ms()
    if _healthy_ms is None:
        _healthy_ms = now
    return now - _healthy_ms >= HEALTHY_S.value * 1000


def _keep():
    if _stable():
        _check.cancel()
        mark_valid()


def _verify_boot():
    global _pending
    version = _pending
    if _stable():
        _check.cancel()
        mark_valid()
        _nv.erase("pending")
        _pending = None
        log.info("ota: %s kept" % version)
        status("kept", version=version, previous=_nv.get_str("from"))
    elif loop.uptime_ms() >= VERIFY_S.value * 1000:
        _check.cancel()
        log.error("ota: %s not healthy within %d s: rolling back" % (version, VERIFY_S.value))
        _reboot_after("OTA %s failed its health check" % version, "unhealthy", version=version)


def _report_rollback():
    global _check, _pending
    from epx import mqtt

    if mqtt.connected:
        _check.cancel()
        if _nv.get_str("pending") == _pending:  # not since replaced by a new update's
            _nv.erase("pending")
        status("rolled back", version=running_version(), failed=_pending)
        _pending = None
        _check = loop.every(_CHECK_MS, _keep)
