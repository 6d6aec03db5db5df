# The control channel: a thread serving the host's requests (JSON lines over AF_UNIX), so
# a test can act while product code is stuck. Host firmware only.
import binascii
import gc
import json
import struct
import sys
import time
import _simclock
import _simirq
import _simstack
import _thread
import uos
import usocket

import sim
from sim import models

_AF_UNIX = const(1)


def _connect(path):
    s = usocket.socket(_AF_UNIX, usocket.SOCK_STREAM)
    s.connect(struct.pack("<H", _AF_UNIX) + path.encode() + b"\0")
    return s


def start():
    """Connect, say hello, apply the world the host answers; then serve from a thread."""
    path = uos.getenv("EPX_SIM_CTL")
    if not path:
        return False
    sock = _connect(path)
    sim.attach(sock)
    sim.emit("hello", boot=sim.BOOT)
    while True:
        line = sock.readline()
        if not line:
            sim.exit(0)
        msg = json.loads(line)
        if msg.get("op") == "world":
            reply(msg, world(msg))
            break
        serve_one(msg)
    _thread.start_new_thread(serve, (sock,))
    return True


def serve(sock):
    while True:
        line = sock.readline()
        if not line:
            # The host is gone: nobody powers this device any more.
            sim.exit(0)
        try:
            msg = json.loads(line)
        except ValueError:
            sim.send({"ok": False, "error": "bad JSON: %r" % line[:80]})
            continue
        serve_one(msg)


def serve_one(msg):
    op = OPS.get(msg.get("op"))
    if op is None:
        reply(msg, error="unknown op %r" % msg.get("op"))
        return
    try:
        result = op(msg)
    except Exception as e:
        reply(msg, error="%s: %s" % (type(e).__name__, e))
        return
    reply(msg, result)


def reply(msg, result=None, error=None):
    if "id" not in msg:
        return
    if error is None:
        if isinstance(result, (bytes, bytearray)):
            result = list(result)
        sim.send({"id": msg["id"], "ok": True, "result": result})
    else:
        sim.send({"id": msg["id"], "ok": False, "error": error})


def world(msg):
    if msg.get("clock_scale"):
        clock_scale({"factor": msg["clock_scale"]})
    wifi_set(msg.get("wifi") or {}, boot=True)
    irq_timing(msg.get("irq") or {})
    sim.stack_limit = msg.get("stack_limit", sim.stack_limit)
    for pin, value in (msg.get("pins") or {}).items():
        _pin()._drive(int(pin), value)
    for m in msg.get("models") or ():
        attach(m)


def _pin():
    from machine import Pin

    return Pin


def attach(msg):
    m = models.attach(msg["bus"], msg["model"], msg.get("addr"), msg.get("args"),
                      msg.get("state"), msg.get("name"))
    return m.name


def pulses(msg):
    # The train starts when the op arrives: a clock.advance after it finds the pulses due.
    _thread.start_new_thread(_pulse_train, (time.ticks_us(), int(msg["pin"]), msg["hz"],
                                            msg.get("count", 1), msg.get("jitter", 0),
                                            msg.get("width_us"), msg.get("bounce_ms")))


def _wait_until(t_us):
    # On the device clock: a walk stops at t_us until this thread has acted and waits again.
    left = time.ticks_diff(t_us, time.ticks_us())
    if left > 0:
        _simclock.sleep_us(left)


def _edge(drive, pin, level, t_us):
    # An edge at device time t_us. A handler due before it that the VM has not run yet is
    # the host being slow, not the device: wait for the VM (a while at most), so the host's
    # speed never fills the IRQ queue.
    for _ in range(1000):
        if not _simirq.lagging(time.ticks_diff(time.ticks_us(), t_us)):
            break
        time.sleep_ms(1)
    drive(pin, level, False, max(0, time.ticks_diff(time.ticks_us(), t_us)))


def _pulse_train(t, pin, hz, count, jitter, width_us, bounce_ms=None):
    import random

    drive = _pin()._drive
    period = 1e6 / hz
    width = int(width_us or period / 2)
    for _ in range(count):
        t = time.ticks_add(t, int(period * (1 + jitter * (2 * random.random() - 1))))
        _transition(drive, pin, 1, t, bounce_ms, random)
        # Both edges stamped in device time: a thread woken late drives them late, the
        # ISR still sees when they happened.
        _transition(drive, pin, 0, time.ticks_add(t, width), bounce_ms, random)


def _transition(drive, pin, level, t, bounce_ms, random):
    # A contact that bounces ([shortest, longest] ms): it makes and breaks 1-3 more times
    # within a bounce time drawn from that range before it settles at level.
    _wait_until(t)
    _edge(drive, pin, level, t)
    if not bounce_ms:
        return
    span = int(1000 * (bounce_ms[0] + random.random() * (bounce_ms[1] - bounce_ms[0])))
    n = 1 + random.getrandbits(2) % 3
    for i in range(1, 2 * n + 1):
        at = time.ticks_add(t, span * i // (2 * n))
        _wait_until(at)
        _edge(drive, pin, level ^ (i & 1), at)


_TIMING = ("latency_us", "gc_us", "tls_us", "erase_us", "write_us")  # simirq.c's order


def irq_timing(msg):
    """Set any of the durations (device us); the IRQ queue's state and all durations."""
    for i, key in enumerate(_TIMING):
        if key in msg:
            _simirq.timing(i, int(msg[key]))
    queued, dropped, held = _simirq.stats()
    result = {key: _simirq.timing(i) for i, key in enumerate(_TIMING)}
    result.update(queued=queued, dropped=dropped)
    return result


_AP = {"ssid": "epx-sim", "password": None, "channel": 6, "up": True, "rssi": -55,
       "country": None}


def _ap(spec, i):
    ap = {"epoch": 0, "bssid": b"\x02\x00\x00\x00\x00" + bytes((i + 1,))}
    for key, default in _AP.items():
        ap[key] = spec.get(key, default)
    return ap


def wifi_set(msg, boot=False):
    w = sim.wifi
    if "aps" in msg:
        for old in w["aps"]:
            old["up"] = False  # a new set of access points: the old ones are gone
        w["aps"] = [_ap(spec, i) for i, spec in enumerate(msg["aps"])]
    # ap (bool), ssid, password, channel, rssi, country (its beacon's country IE, None:
    # none): the first access point. A change restarts it: stations associated with it
    # lose the link.
    for key in ("ssid", "password", "channel", "rssi", "country", "ap"):
        if key in msg:
            first = w["aps"][0]
            field = "up" if key == "ap" else key
            if first[field] != msg[key]:
                first[field] = msg[key]
                first["epoch"] += 1
    for key in ("delay_ms", "scan_ms", "cable", "dns_ms", "dns_servers"):
        if key in msg:
            w[key] = msg[key]
    # drop is an event: the association in place (if any) is lost, sockets break.
    if msg.get("drop") and not boot:
        w["generation"] += 1


def _soft_ap():
    import network

    return network.WLAN(network.AP_IF)


def ap_join(msg):
    # A station (the host) associating with the soft AP: its address on the AP's network.
    return _soft_ap()._join(msg.get("mac", "host"), msg.get("password"))


def net_ports(msg):
    # The host ports of the firmware's bound sockets: {"tcp:80": port, ...}
    import socket

    return {"%s:%d" % k: v for k, v in socket._ports.items()}


def espnow_deliver(msg):
    import _espnow

    return _espnow._deliver(binascii.unhexlify(msg["peer"]), binascii.a2b_base64(msg["msg"]),
                            msg.get("rssi", -50), msg.get("key"))


def _next_task():
    # ms until asyncio's next task is due (None: none queued); read while main waits.
    try:
        from asyncio import core

        t = core._task_queue.peek()
        return None if t is None else time.ticks_diff(t.ph_key, time.ticks_ms())
    except Exception:
        return 0


def clock_advance(msg):
    if _simclock.advance(msg["ms"], _next_task):
        # The watchdog bit during the walk: the host gets its answer, then the chip resets.
        reply(msg)
        from machine import WDT

        WDT._reset(time.ticks_ms())


def espnow_sent(msg):
    import _espnow

    _espnow._sent(msg["ok"], msg.get("busy_ms", 0), msg.get("cb_ms", 0))


def clock_scale(msg):
    _simclock.scale(msg["factor"])
    sim.scale = msg["factor"]


def clock_busy(msg):
    """What the VM's task computed (device us) since the last call, its longest stretch
    without waiting, and over how long; counting starts again."""
    busy, longest, since = _simclock.busy()
    return {"busy_us": busy, "longest_us": longest, "since_us": since}


def state(msg):
    gc.collect()
    return {"mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(),
            "uptime_ms": time.ticks_ms(), "t_us": _simclock.now_us(),
            "models": list(models.by_name), "modules": list(sys.modules),
            "nvs_handles": _nvs_handles(), "sockets": _sockets(), "stack_high": sim.stack_high,
            "stack_base": sim.stack_base, "stack_own": _simstack.high(), "ram": _ram()}


_held = []  # RAM blocks the world holds (ram.hold)


def ram_hold(msg):
    # Another C user of the RAM (a driver, a second connection) holds `bytes` of it, in
    # blocks of `block` (as many as fit): the bytes held.
    import _simram

    n = 0
    while n < msg["bytes"]:
        h = _simram.take(msg.get("block", 1024))
        if h is None:
            break
        _held.append(h)
        n += msg.get("block", 1024)
    return n


def ram_release(msg):
    import _simram

    while _held:
        _simram.give(_held.pop())


def _ram():
    # The modelled ESP32 RAM (simram.c): its regions as idf_heap_info gives them (None while
    # the model is off) and the bytes held now and at most by GC areas, mbedTLS, the rest.
    import _simram

    use = _simram.use()
    return {"regions": _simram.info(), "gc": use[0], "gc_peak": use[1], "tls": use[2],
            "tls_peak": use[3], "c": use[4], "c_peak": use[5]}


def _sockets():
    socket = sys.modules.get("socket")
    return socket._open if socket else 0


def _nvs_handles():
    esp32 = sys.modules.get("esp32")
    return esp32._nvs_open if esp32 else 0


def mqtt_pubs(msg):
    # The publications the firmware declared (epx.mqtt.pub): [name, check ms, force ms] each.
    mqtt = sys.modules.get("epx.mqtt")
    return [[p.name, p._period, p.force_ms] for p in mqtt._pubs] if mqtt else []


OPS = {
    "ram.hold": ram_hold,
    "ram.release": ram_release,
    "clock.advance": clock_advance,
    "clock.scale": clock_scale,
    "clock.now": lambda m: _simclock.now_us(),
    "clock.busy": clock_busy,
    "pin.set": lambda m: _pin()._drive(int(m["pin"]), m["value"]),
    "pin.get": lambda m: _pin()._level(int(m["pin"])),
    "pin.pulses": pulses,
    "pin.irq_timing": irq_timing,
    "wifi.set": wifi_set,
    "ap.join": ap_join,
    "ap.leave": lambda m: _soft_ap()._leave(m.get("mac", "host")),
    "net.ports": net_ports,
    "model.attach": attach,
    "model.call": lambda m: models.call(m["name"], m["method"], m.get("args") or ()),
    "espnow.deliver": espnow_deliver,
    "espnow.sent": espnow_sent,
    "state": state,
    "mqtt.pubs": mqtt_pubs,
    "world": world,
}
