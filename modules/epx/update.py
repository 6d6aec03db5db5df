# The Home Assistant update entity. The operator offers a firmware with `epx ota --offer`:
# retained on cmnd/<n>/Offer, the JSON of an OTA request (epx.ota) and optionally
# "release_url", signed like one but as an offer:
#     hmac = HMAC-SHA256(ota_key, "<mqttname> offer <url> <size> <sha256> <profile> <version>
#            <counter>[ allow-downgrade][ <release_url>]")
# Its counter is taken by the one replay guard (epx.replay). The offer taken last is kept in
# NVS, whole, so its retained copy, delivered again on every connection, stays good after
# other signed commands moved the guard on (any other older counter is a replay), and a
# forged offer put in its place on the broker takes nothing away. An offer not newer than
# the running firmware is refused when it comes; the kept one, once installed, is spent;
# an empty retained message (withdrawn) forgets it for good.
# stat/<n>/Update is the entity's JSON state: installed and offered version, release URL,
# why an offer was refused, progress. "install" on cmnd/<n>/Update installs exactly the
# offered image through epx.ota (its version order, floor and health check): Home Assistant
# can start only what the operator signed.
import json

from epx import log, mqtt, ota, replay
from epx.nvram import NVRAM
from epx.version import PROFILE

_INSTALL = "install"
_MAX_NOTE = const(255)  # Home Assistant's release_summary

_nv = NVRAM("ota")
_installed = None
_offer = None  # the offer verified last
_note = ""  # why the last offer was refused, how the last install ended
_percent = None  # while an install runs
_pub = None


def start():
    global _installed, _pub
    if _pub is not None:
        return
    _installed = ota.running_version()
    _restore()
    ota.observe(_on_status)
    mqtt.sub("Offer", _on_offer, retained=True)
    mqtt.sub("Update", _on_install)
    _pub = mqtt.pub("Update", _state, json.dumps, check_s=60, force_s=1800, ha={
        "component": "update", "name": "Firmware update", "device_class": "firmware",
        "command_topic": mqtt.topic("cmnd", "Update"), "payload_install": _INSTALL})


def _restore():
    # The offer kept in NVS, checked again: whatever the broker holds now (a forged offer
    # in its place, nothing) cannot take it away; once installed it is spent.
    global _offer
    text = _nv.get_str("offertext")
    if text is None:
        return
    try:
        o = ota.signed(text, "offer")
        if int.from_bytes(_nv.get_bytes("offer", b""), "big") != o["counter"]:
            raise ValueError("not the offer taken last")
        ota.check(dict(o), _installed)
        _offer = o
    except ValueError as e:
        log.info("update: kept offer dropped: %s" % e)
        _forget()


def _forget():
    # Its counter stays, spent: the same offer delivered again is passed over.
    _nv.erase("offertext")


def offer():
    """The verified offer (a dict as epx.ota takes it), or None."""
    return _offer


def _state():
    s = {"installed_version": _installed, "title": "epx " + PROFILE,
         "latest_version": _offer["version"] if _offer else _installed,
         "release_summary": _note, "in_progress": _percent is not None,
         "update_percentage": _percent}
    if _offer and _offer.get("release_url"):
        s["release_url"] = _offer["release_url"]
    return s


def _noted(text):
    global _note
    _note = text[:_MAX_NOTE]
    _pub.check()


def _on_offer(text):
    global _offer
    if not text:  # the operator withdrew it: forgotten for good
        _offer = None
        _forget()
        return _noted("")
    try:
        o = ota.signed(text, "offer")
        kept = _nv.get_bytes("offer")
        same = kept is not None and int.from_bytes(kept, "big") == o["counter"]
        if same and _nv.get_str("offertext") is None:
            return log.info("update: offer %d spent" % o["counter"])  # installed or withdrawn
        if not same:
            replay.commands().take(o["counter"])
        ota.check(dict(o), _installed)  # not newer than what runs: refused now, not at install
    except ValueError as e:
        log.warn("update: offer refused: %s" % e)
        _noted("Offer refused: %s" % e)  # a verified offer kept stays offered
        raise
    if not same:
        _nv.set_bytes("offer", o["counter"].to_bytes(8, "big"))
    _nv.set_str("offertext", text)
    _offer = o
    log.info("update: %s offered" % o["version"])
    _noted("")


def _on_install(text):
    if text != _INSTALL:
        raise ValueError("not %r" % _INSTALL)
    if _offer is None:
        raise ValueError("no offer to install")
    ota.install(_offer)


def _on_status(state, fields):
    # Each OTA status (of an offer's install or of a request) as the entity's progress.
    global _percent
    if state == "accepted":
        _percent = 0
    elif state == "downloading":
        _percent = fields["done"] * 100 // fields["size"]
    elif state == "rebooting":
        _percent = 100
    elif state in ("refused", "failed"):
        _percent = None
        return _noted("Update %s: %s" % (state, fields.get("error")))
    elif state == "rolled back":
        return _noted("%s was rolled back" % fields.get("failed"))
    else:
        return
    _pub.check()
