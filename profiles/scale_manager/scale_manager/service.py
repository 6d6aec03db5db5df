# The scale manager: once the network is up, ESP-NOW on the AP's channel with the sensor as
# its only (encrypted) peer. A message is published only if it comes from the sensor's MAC,
# has the right length, version, type and tag, and a number above the last one accepted
# (kept in NVS): a replay is refused; a repeat of the last (its ack was lost) is acked again.
import asyncio
import network

from epx import config, log, loop, mqtt, net, netnow, replay

PMK = config.key("pmk", netnow.key, doc="ESP-NOW primary key||00112233445566778899aabbccddeeff|32 hex digits, as on the sensor", secret=True)
SENSOR = config.key("sensor", netnow.mac, doc="Sensor MAC||24:0a:c4:65:43:21|The scale sensor's")
LMK = config.key("sensor_lmk", netnow.key, doc="Sensor link key||0f1e2d3c4b5a69788796a5b4c3d2e1f0|32 hex digits: the sensor's manager_lmk", secret=True)

_FORCE_S = const(1800)

link = None
weight = None  # kg (or the calibration's unit), None when the sensor could not weigh
malfunction = None
battery = None
refused = 0
_last_seen = None  # uptime ms of the last accepted message
_replay = None
_flag = None
_pubs = []


def setup():
    global _replay, _flag
    mqtt.describe("Scale receiver")
    _replay = replay.Guard("scalemgr", "seq", bits=32)
    _flag = asyncio.ThreadSafeFlag()
    _pubs.append(mqtt.pub("Weight", lambda: weight, "%.3f", check_s=60, force_s=_FORCE_S,
                          ha=("weight", "kg")))
    _pubs.append(mqtt.pub("Malfunction", lambda: malfunction, "%d", check_s=60,
                          force_s=_FORCE_S, ha=mqtt.MALFUNCTION))
    _pubs.append(mqtt.pub("Battery", lambda: battery, "%.2f", check_s=60, force_s=_FORCE_S,
                          ha=("voltage", "V")))
    mqtt.pub("LastSeen", last_seen_min, "%d", check_s=60, force_s=_FORCE_S,
             ha=("duration", "min"))
    mqtt.pub("Refused", lambda: refused, "%d", check_s=60, force_s=_FORCE_S,
             ha={"name": "Refused frames", "state_class": "total_increasing",
                 "entity_category": "diagnostic"})
    loop.task(_serve())


def last_seen_min():
    """Minutes since the sensor's last message (None before the first)."""
    return None if _last_seen is None else (loop.uptime_ms() - _last_seen) // 60000


async def _serve():
    global link
    while not net.up():
        await asyncio.sleep_ms(1000)
    sta = network.WLAN(network.STA_IF)
    sta.config(pm=sta.PM_NONE)  # WiFi power saving sleeps through ESP-NOW frames
    channel = sta.config("channel")  # the AP's (net: `channel`)
    link = netnow.start(None, PMK.value, SENSOR.value, LMK.value)
    link.irq(lambda e: _flag.set())
    log.info("scale: ESP-NOW on channel %d" % channel)
    while True:
        while link.any():
            mac, msg = link.recv(0)
            if mac is not None:
                receive(bytes(mac), bytes(msg))
        await _flag.wait()


def receive(mac, msg):
    global refused
    try:
        if mac != SENSOR.value:
            raise netnow.Refused("MAC %s" % mac.hex())
        kind, seq, payload = netnow.unpack(msg, LMK.value)
        if kind != netnow.DATA:
            raise netnow.Refused("type %d" % kind)
        pairs = netnow.decode(payload)
        verdict = _replay.check(seq)
    except (netnow.Refused, replay.Refused, UnicodeError) as e:
        refused += 1
        log.warn("scale: refused: %s" % e)
        return
    try:
        link.send(mac, netnow.pack(netnow.ACK, seq, b"", LMK.value))
    except OSError as e:  # the sensor sends again; its repeat is acknowledged then
        log.warn("scale: ack #%d: %s" % (seq, e))
    if verdict == replay.NEW:
        _replay.store(seq)
        _accept(pairs)
        log.info("scale: #%d %s" % (seq, pairs))


def _accept(pairs):
    global weight, malfunction, battery, _last_seen
    values = dict(pairs)
    weight = _number(values.get("Weight"), float)
    malfunction = _number(values.get("Malfunction"), int)
    battery = _number(values.get("Battery"), float)
    _last_seen = loop.uptime_ms()
    for p in _pubs:
        p.check(True)  # every reading is news, even if equal to the last


def _number(text, kind):
    try:
        return None if text is None else kind(text)
    except ValueError:
        return None
