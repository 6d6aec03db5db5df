# The broker connection and the appliance's topics. Publications and subscriptions are
# declared one line each:
#     mqtt.pub("Flow", lambda: flow.rate, "%.1f", check_s=10, force_s=1800, ha=("volume_flow_rate", "L/min"))
#     mqtt.sub("Program", on_program)        # cmnd/<n>/Program; on_program(text)
# A publication is computed every check_s and sent when its text changed, or force_s after
# it was last sent; it counts as sent only once the client wrote it (QoS 1: queued in the
# client, which resends it until acknowledged). While the broker is away each publication
# keeps only its newest value. States are retained (as ESPHome's are): a subscriber that
# comes later, Home Assistant restarting, has every one at once; the retained LWT says
# whether they are current.
import asyncio
import socket

import uumqtt
from epx import config, crash, log, loop, net, sntp, watchdog
from epx.nvram import NVRAM

# The nodes of a cluster (or bridged brokers), host[:port] each: a lost or refused node
# gives way to the next in the list, round and round.
BROKER = config.key("mqttbroker", config.hosts, doc="MQTT broker||192.168.1.2|Host name or IP address; a cluster: host:port,host:port")
NAME = config.key("mqttname", config.name, doc="Device name||kitchen|Its MQTT topics and Home Assistant name: letters, digits, _ or -")
PORT = config.key("mqttport", config.int_range(1, 65535), None, "MQTT port||1883|Empty: 1883, or 8883 with mqttca (TLS)")
USER = config.key("mqttuser", str, None, "MQTT user||epx|Empty: none")
PASSWORD = config.key("mqttpassword", str, None, "MQTT password|||Empty: none", secret=True)
CA = config.key("mqttca", str, None, "MQTT CA certificate||ca.der|A DER file on the device: TLS to the broker")
KEEPALIVE = config.key("mqttkeepalive", config.int_range(4, 65535), 30, "MQTT keepalive|s|30|A silent broker is noticed within this; 4-65535")
REBOOT_S = config.key("mqttreboot", config.int_range(60, 86400), 600, "Reboot without the broker after|s|600|60-86400")
HOMEASSISTANT = config.key("homeassistant", bool, True, "Home Assistant discovery||1|1: the device appears in Home Assistant; 0: off")
# Controls Home Assistant may use without a signature (the user's choice): "restart".
UNSIGNED = config.key("haunsigned", config.one_of("", "restart"), "", "Unsigned Home Assistant controls||restart|restart: Home Assistant may restart it unsigned")

_FIRST_RETRY_MS = const(500)
_MAX_RETRY_MS = const(120000)
_MAX_EVENTS = const(16)

sm = loop.StateMachine("mqtt", {
    "off": ("connecting",),
    "connecting": ("up", "waiting"),
    "up": ("waiting",),
    "waiting": ("connecting",),
}, "off")

connected = False
problem = None  # why the last attempt failed
client = None
_pubs = []
_entities = []  # (name, ha, None): discovery only
_subs = {}  # name under cmnd/<n>/ -> callback(text)
_retained = []  # names whose retained messages count
_events = []  # one-off (name, payload, retain, qos, done), oldest first
# Set from the loop only (timers, tasks, message callbacks): an Event, which the loop waits
# on without polling it as it polls a ThreadSafeFlag (every ms on the ESP32).
_wake = asyncio.Event()
_retry_ms = _FIRST_RETRY_MS
_node = 0  # index in BROKER.value of the node in use, or tried next
_down_since = 0
_held = False  # no reboot for want of a broker meanwhile
_discovery = False  # discovery configs to send
_nv = None
_cmnd = None  # "cmnd/<n>/"
_DISCOVERY_GENERATION = const(1)  # NVS "hagen": see _send_discovery
_TOTALS = ("energy", "gas", "volume", "water", "precipitation")  # no "measurement" in HA


def topic(kind, name):
    return "%s/%s/%s" % (kind, NAME.value, name)


class Pub(loop.Timer):
    # A publication is its own check timer: one object, one small dict. Values left at
    # their defaults stay class attributes.
    force_ms = 0
    retain = True
    qos = 0
    ha = None
    topic = None  # stat/<n>/<name>, once mqttname is known
    sent = None  # text the broker has
    sent_at = 0  # uptime ms
    pending = None  # text to send

    def __init__(self, name, source, fmt, check_s, force_s, retain, qos, ha):
        super().__init__(None, int(check_s * 1000))
        self.name = name
        self.source = source
        self.fmt = fmt
        if force_s:
            self.force_ms = force_s * 1000
        if not retain:
            self.retain = retain
        if qos:
            self.qos = qos
        if ha:
            self.ha = ha
        self.start()

    def check(self, force=False):
        value = self.source()
        if value is None:
            self.sent = self.pending = None  # withdrawn: the next value is news
            return
        text = self.fmt(value) if callable(self.fmt) else self.fmt % value
        if force or text != self.sent or (
                self.force_ms and loop.uptime_ms() - self.sent_at >= self.force_ms):
            self.pending = text
            _wake.set()

    _fire = check


def pub(name, source, fmt="%s", check_s=60, force_s=1800, retain=True, qos=0, ha=None):
    """Publish source() on stat/<n>/<name>, formatted with fmt (a % format or a function),
    retained unless told not to."""
    p = Pub(name, source, fmt, check_s, force_s, retain, qos, ha)
    _pubs.append(p)
    return p


# A profile's Malfunction code (0: none) as a problem binary sensor, the code an attribute.
MALFUNCTION = {"component": "binary_sensor", "device_class": "problem", "name": "Malfunction",
               "value_template": "{{ 'ON' if value | int(0) else 'OFF' }}",
               "json_attributes_topic": True,
               "json_attributes_template": "{{ {'code': value | int(0)} | tojson }}"}


def entity(name, ha):
    """A Home Assistant entity with no publication of its own (a button). `ha` as for pub():
    (device_class, unit[, state_class]) or a dict of discovery keys; "name", "component"
    and "key" (a field of a JSON state) are ours, a key set to None is left out, a *_topic
    set to True is the state topic."""
    _entities.append((name, ha, None))


def sub(name, callback, retained=False):
    """callback(text) for each non-duplicate message on cmnd/<n>/<name>, retained ones only
    when told (what is signed may stay on the broker: an update offer).
    A ValueError from it is reported on stat/<n>/Log as a bad command."""
    _subs[name] = callback
    if retained:
        _retained.append(name)
    if client is not None and connected:
        loop.task(_subscribe(name))


def publish(name, payload, retain=False, qos=0, done=None):
    """A one-off message on stat/<n>/<name>, sent in order; the oldest is dropped while
    more than _MAX_EVENTS wait for the broker. done() is called once it was sent."""
    if len(_events) >= _MAX_EVENTS:
        _events.pop(0)
    _events.append((name, payload, retain, qos, done))
    _wake.set()


def report(text):
    """A line on stat/<n>/Log."""
    publish("Log", text)


def refresh():
    """Send every value now (cmnd/<n>/Refresh)."""
    for p in _pubs:
        p.check(True)


def state():
    return sm.state


# --- the connection ---------------------------------------------------------------


def start(reboot=True):
    """Connect and keep connected; reboot after mqttreboot s without the broker unless told
    not to (safe mode). Without a usable mqttname (safe mode) the device reports as
    <profile>-<last 6 hex digits of its chip id>."""
    global client, _nv, _down_since, _cmnd
    if client is not None:
        return
    import machine

    if NAME.value is None:
        from epx.version import PROFILE

        NAME.value = "%s-%s" % (PROFILE, machine.unique_id().hex()[-6:])
        log.warn("mqtt: no usable mqttname: reporting as %s" % NAME.value)
    _nv = NVRAM("epx")
    _cmnd = "cmnd/%s/" % NAME.value
    will = (topic("stat", "LWT"), "Offline", True, 1)
    host, port = _address()
    client = uumqtt.MQTTClient(
        "%s-%s" % (NAME.value, machine.unique_id().hex()), host, port, USER.value,
        PASSWORD.value, KEEPALIVE.value, None, host, will, max_packet=1024,
        on_message=_on_message)
    pub("Uptime", lambda: loop.uptime_ms() // 60000, "%d", check_s=60, force_s=1800,
        ha={"device_class": "duration", "unit_of_measurement": "min", "name": "Uptime",
            "state_class": "total_increasing", "entity_category": "diagnostic"})
    entity("Refresh", {"component": "button", "name": "Refresh", "state_topic": None,
                       "command_topic": topic("cmnd", "Refresh")})
    _subs.setdefault("Refresh", lambda text: refresh())
    if UNSIGNED.value == "restart":
        entity("Restart", {"component": "button", "name": "Restart", "state_topic": None,
                           "device_class": "restart", "entity_category": "config",
                           "command_topic": topic("cmnd", "Restart")})
        _subs["Restart"] = lambda text: crash.reboot("restart from Home Assistant")
    _down_since = loop.uptime_ms()
    sm.observe(_observe)
    net.sm.observe(_net_changed)
    if reboot:
        loop.every(1000, _check_reboot)
    loop.task(_sender())
    _attempt()


def _address():
    host, port = BROKER.value[_node]
    return host, port or PORT.value or (8883 if CA.value else 1883)


def _observe(old, new):
    global connected
    connected = new == "up"


def _net_changed(old, new):
    if old == "up":  # the connection went with the link: no need to wait for keepalive
        client.close(uumqtt.ConnectionLost("network %s" % new))


def lost():
    return _nv.get_int("mqttlost", 0)


def _attempt():
    if not net.up():
        sm.timer(1000, _attempt)  # in "off" or "waiting": check the network again
        return
    if CA.value and not sntp.known():  # TLS checks the certificate's dates
        log.info("mqtt: TLS waits for the time (sntp)")
        return sntp.when_known(_attempt)
    sm.go("connecting")
    loop.task(_connect())


async def _connect():
    global _retry_ms, _discovery
    try:
        if CA.value and client.ssl is None:
            client.ssl = _tls()  # never without TLS when it is configured
        host, client.port = _address()
        client.server_hostname = host  # TLS checks the certificate against the node's name
        with watchdog.may_block(30000):
            client.server = socket.getaddrinfo(host, client.port)[0][-1][0]
        await client.connect()
        for name in _subs:
            await client.subscribe(topic("cmnd", name), 1)
        if HOMEASSISTANT.value:
            await client.subscribe("homeassistant/status", 0)
        await client.publish(topic("stat", "LWT"), "Online", True, 1)
    except (uumqtt.MQTTError, OSError) as e:
        await client.disconnect()
        return _retry("connect: %s %s" % (type(e).__name__, e))
    _retry_ms = _FIRST_RETRY_MS
    sm.go("up")
    log.info("mqtt: up, %s:%d" % (client.server_hostname, client.port))
    _discovery = HOMEASSISTANT.value
    for p in _pubs:  # the broker may have restarted: every value again
        p.check(True)
    _wake.set()
    loop.task(_watch())


def _tls():
    import tls

    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED
    try:
        with open(CA.value, "rb") as f:
            ctx.load_verify_locations(f.read())
    except (OSError, ValueError) as e:
        raise OSError("mqttca %s: %s" % (CA.value, e))
    return ctx


async def _watch():
    global _down_since
    e = await client.wait_closed()
    _down_since = loop.uptime_ms()
    _nv.set_int("mqttlost", lost() + 1)
    _retry("lost: %s %s" % (type(e).__name__, e))


def _retry(why):
    global _retry_ms, _node, problem
    problem = why
    delay = _retry_ms
    _node = (_node + 1) % len(BROKER.value)
    _retry_ms = min(_retry_ms * 2, _MAX_RETRY_MS)
    log.warn("mqtt: %s; retry in %d ms%s" % (
        why, delay, " at %s:%d" % _address() if len(BROKER.value) > 1 else ""))
    sm.go("waiting")
    sm.timer(delay, _attempt, jitter_ms=delay // 2)


def hold_reboot(on):
    """While on (the fallback access point serves), no reboot for want of a broker; after,
    the time counts afresh."""
    global _held, _down_since
    _held = on
    _down_since = loop.uptime_ms()


def _check_reboot():
    if sm.state != "up" and not _held and loop.uptime_ms() - _down_since >= REBOOT_S.value * 1000:
        crash.reboot("no MQTT broker for %d s" % REBOOT_S.value)


# --- sending ----------------------------------------------------------------------


async def _sender():
    global _discovery
    while True:
        await _wake.wait()
        _wake.clear()
        try:
            while connected:
                if _discovery:
                    _discovery = False
                    await _send_discovery()
                elif _events:
                    e = _events[0]
                    await _put(topic("stat", e[0]), e[1], e[2], e[3])
                    if _events and _events[0] is e:  # not pushed out meanwhile
                        _events.pop(0)
                    if e[4]:
                        e[4]()
                else:
                    for p in _pubs:
                        if p.pending is not None:
                            break
                    else:
                        break
                    text = p.pending
                    if p.topic is None:
                        p.topic = topic("stat", p.name)
                    await _put(p.topic, text, p.retain, p.qos)
                    p.sent = text
                    p.sent_at = loop.uptime_ms()
                    if p.pending == text:
                        p.pending = None
        except uumqtt.MQTTError:
            pass  # _watch() takes it from here; what was not sent stays pending


async def _put(t, payload, retain, qos):
    # QoS 1: one at a time; unacknowledged it stays with the client, resent on reconnect.
    pid = await client.publish(t, payload, retain, qos)
    if qos:
        await client.wait_ack(pid)


# --- receiving --------------------------------------------------------------------


def _on_message(t, msg, retained, dup):
    try:
        t = t.decode()
        text = msg.decode()
    except UnicodeError:
        return log.warn("mqtt: undecodable message ignored")
    if t == "homeassistant/status":
        if text == "online" and HOMEASSISTANT.value:
            # Home Assistant announces itself once subscribed to every state topic it knows
            # of: every state right after the configs (the sender sends those first).
            global _discovery
            _discovery = True
            refresh()
            _wake.set()
        return
    name = t[len(_cmnd):] if t.startswith(_cmnd) else None
    if dup or retained and name not in _retained:
        return log.warn("mqtt: %s %s ignored" % ("duplicate" if dup else "retained", t))
    callback = _subs.get(name)
    if callback is None:
        return
    try:
        callback(text)
    except ValueError as e:
        report("%s: bad command %r: %s" % (name, text[:40], e))
    except Exception as e:  # a bug, not bad input
        crash.fatal(e)


async def _subscribe(name):
    try:
        await client.subscribe(topic("cmnd", name), 1)
    except uumqtt.MQTTError:
        pass  # subscribed again on the next connection


# --- Home Assistant discovery -----------------------------------------------------
# The compatibility promise (docs/decisions.md): an entity's unique_id (epx_<mac>_<uid>) and
# its discovery topic (homeassistant/<component>/<mqttname>/<uid>/config) never change;
# an entity a firmware drops is named in a retire() line, and its topic cleared on each
# connection, so Home Assistant removes it instead of keeping an orphan.

MODEL = None  # the appliance's name as a user knows it (device info); else the profile's id
_retired = []  # "<component>/<uid>"


def describe(model):
    """The appliance's name in Home Assistant's device info ("Water tank monitor")."""
    global MODEL
    MODEL = model


def retire(path):
    """An entity an earlier firmware announced and this one has no more: "<component>/<uid>"
    as its discovery topic had them. One line each, kept for good."""
    _retired.append(path)


def _config_topic(path):
    # "<component>/<uid>" -> its discovery topic
    c, uid = path.split("/", 1)
    return "homeassistant/%s/%s/%s/config" % (c, NAME.value, uid)


def _announced():
    # (component, uid, publication name, ha dict, fmt) of each entity, in order
    out = []
    for pname, has, fmt in [(p.name, p.ha, p.fmt) for p in _pubs if p.ha] + _entities:
        for ha in has if isinstance(has, list) else (has,):
            if not isinstance(ha, dict):
                t, ha = ha, {"device_class": ha[0], "unit_of_measurement": ha[1]}
                if len(t) > 2:
                    ha["state_class"] = t[2]
            key = ha.get("key")
            out.append((ha.get("component", "sensor"), pname.replace("/", "_") + ("_" + key if key else ""),
                        pname, ha, fmt))
    return out


def _slug(text):
    # Home Assistant's entity id form of a name: "Pumped since level change" ->
    # "pumped_since_level_change"
    out = ""
    for c in text.lower():
        if "a" <= c <= "z" or "0" <= c <= "9":
            out += c
        elif out and out[-1] != "_":
            out += "_"
    return out.strip("_")


async def _send_discovery():
    # Rarely (each connection, each Home Assistant restart): imports and all stay here.
    # Each publication with `ha` is one entity, or several reading fields of its JSON.
    from epx.version import BOARD, PROFILE, VERSION
    import json
    import machine

    name = NAME.value
    mac = machine.unique_id().hex()
    colons = ":".join(mac[i:i + 2] for i in range(0, 12, 2))
    device = {"identifiers": ["epx_" + mac], "name": name, "model": MODEL or PROFILE,
              "model_id": PROFILE, "hw_version": BOARD, "serial_number": colons,
              "connections": [["mac", colons]], "sw_version": VERSION, "manufacturer": "epx"}
    origin = {"name": "epx", "sw_version": VERSION}
    for path in _retired:
        await _put(_config_topic(path), "", True, 1)
    # A firmware before this promise (41c0f67) announced these topics with other unique_ids:
    # once, each is cleared before it is announced again, so Home Assistant removes the old
    # entity (and the device left empty) before it makes the new one, under the same id.
    fresh = _nv.get_int("hagen", 0) < _DISCOVERY_GENERATION
    for component, uid, pname, ha, fmt in _announced():
        key = ha.get("key")
        label = ha.get("name") or _readable(uid)
        doc = {
            "name": label,
            "unique_id": "epx_%s_%s" % (mac, uid), "object_id": "%s_%s" % (_slug(name), _slug(label)),
            "state_topic": topic("stat", pname), "availability_topic": topic("stat", "LWT"),
            "payload_available": "Online", "payload_not_available": "Offline",
            "device": device, "origin": origin,
        }
        if key:
            doc["value_template"] = "{{ value_json.%s }}" % key
        if component == "sensor" and ha.get("unit_of_measurement") and "state_class" not in ha:
            doc["state_class"] = "total_increasing" if ha.get("device_class") in _TOTALS else "measurement"
        if component == "sensor" and not key and isinstance(fmt, str) and fmt[-1] in "fd":
            doc["suggested_display_precision"] = int(fmt[-2]) if fmt[-1] == "f" else 0
        for k, v in ha.items():
            if k in ("component", "key", "name"):
                continue
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = doc["state_topic"] if v is True and k.endswith("_topic") else v
        t = _config_topic(component + "/" + uid)
        if fresh:
            await _put(t, "", True, 1)
        await _put(t, json.dumps(doc), True, 1)
    if fresh:
        _nv.set_int("hagen", _DISCOVERY_GENERATION)


def _readable(uid):
    # "CoarseLevelPct" -> "Coarse level pct", "0_State" -> "0 state"
    out = ""
    for i, c in enumerate(uid):
        if c == "_":
            c = " "
        elif c.isupper() and i and uid[i - 1].islower():
            c = " " + c
        out += c
    return out[:1].upper() + out[1:].lower()
