"""`epx devices`: every epx device on a broker, from what the devices publish (epx.mqtt,
epx.health): stat/<n>/LWT (retained: Online/Offline), the Home Assistant discovery
configs (retained: the profile as the device's model_id, its firmware version), and
stat/<n>/Health and stat/<n>/Uptime, which an online device sends again at once on
cmnd/<n>/Refresh."""

import json
import threading
import time

from .diag import broker_client
from .errors import EpxError

COLUMNS = ("name", "profile", "version", "online", "uptime", "ip", "rssi", "reset", "safe")
HEADINGS = ("NAME", "PROFILE", "VERSION", "ONLINE", "UPTIME", "IP", "RSSI", "LAST RESET", "SAFE MODE")
TOPICS = ("stat/+/LWT", "stat/+/Health", "stat/+/Uptime", "homeassistant/+/+/+/config")


def uptime(minutes):
    if minutes is None:
        return ""
    days, rest = divmod(int(minutes), 1440)
    hours, mins = divmod(rest, 60)
    return (f"{days} d " if days else "") + (f"{hours} h " if days or hours else "") + f"{mins} min"


class Survey:
    """What the broker knows of each device: {name: {column: value}}, kept current by the
    messages as they come (on a paho-mqtt thread); changed is set on each change."""

    def __init__(self):
        self.devices = {}
        self.lock = threading.Condition()
        self.changed = threading.Event()

    def take(self, topic, payload):
        parts = topic.split("/")
        text = payload.decode("utf-8", "replace")
        if parts[0] == "homeassistant":
            name = parts[2]
            try:
                device = json.loads(text).get("device") or {}
            except ValueError:
                return
            if device.get("manufacturer") != "epx":
                return
            fields = {"profile": device.get("model_id") or device.get("model"), "version": device.get("sw_version")}
        elif parts[2] == "LWT":
            name, fields = parts[1], {"online": "yes" if text == "Online" else "no"}
        elif parts[2] == "Uptime":
            name, fields = parts[1], {"uptime": uptime(text) if text.isdigit() else text}
        else:  # Health
            try:
                h = json.loads(text)
            except ValueError:
                return
            name = parts[1]
            fields = {"ip": h.get("ip"), "rssi": h.get("rssi"), "reset": h.get("reset"),
                      "version": h.get("version"), "safe": {"ON": "yes", "OFF": "no"}.get(h.get("safe"))}
            if fields["version"] and "-" in fields["version"]:
                fields["profile"] = fields["version"].split("-", 1)[0]
        fields = {k: v for k, v in fields.items() if v is not None}
        with self.lock:
            row = self.devices.setdefault(name, {})
            if any(row.get(k) != v for k, v in fields.items()):
                row.update(fields)
                self.changed.set()
            self.lock.notify_all()

    def complete(self, names):
        """Whether each of `names` has sent its health and uptime."""
        return all("ip" in self.devices.get(n, {}) and "uptime" in self.devices.get(n, {})
                   for n in names)

    def table(self):
        with self.lock:
            rows = [[name] + [str(self.devices[name].get(c, "")) for c in COLUMNS[1:]]
                    for name in sorted(self.devices)]
        widths = [max(len(r[i]) for r in rows + [list(HEADINGS)]) for i in range(len(HEADINGS))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in [list(HEADINGS)] + rows]
        return "\n".join(lines) + "\n"


def connect(host, port, survey, user=None, password=None, cafile=None, timeout=10):
    """A client subscribed to every device topic with survey taking the messages; returns
    once the broker has delivered every retained message (a marker published after the
    subscription comes back after them: a broker keeps one client's messages in order)."""
    marker = f"epx/devices/{time.time_ns()}"
    ready, synced, failed = threading.Event(), threading.Event(), []
    client = broker_client("devices", user, password, cafile)

    def on_connect(c, userdata, flags, reason, properties=None):
        if reason.is_failure:
            failed.append(str(reason))
            ready.set()
        else:
            c.subscribe([(t, 1) for t in TOPICS] + [(marker, 1)])

    def on_subscribe(c, *a):
        c.publish(marker, b"", qos=1)
        ready.set()

    def on_message(c, userdata, msg):
        if msg.topic == marker:
            synced.set()
        else:
            survey.take(msg.topic, msg.payload)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise EpxError(f"broker {host}:{port}: {e.strerror or e}")
    client.loop_start()
    if not ready.wait(timeout) or failed or not synced.wait(timeout):
        client.loop_stop()
        raise EpxError(f"broker {host}:{port}: " + (f"refused: {failed[0]}" if failed
                                                    else f"no subscription within {timeout:g} s"))
    return client


def survey(host, port, timeout=5, watch=None, **login):
    """The table of every device; each online one is asked to refresh its values and given
    `timeout` seconds to answer. watch(table) then gets each new table until interrupted."""
    s = Survey()
    client = connect(host, port, s, **login)
    try:
        with s.lock:
            online = [n for n, row in s.devices.items() if row.get("online") == "yes"]
        for name in online:
            client.publish(f"cmnd/{name}/Refresh", b"", qos=1)
        with s.lock:
            s.lock.wait_for(lambda: s.complete(online), timeout)
        table = s.table()
        if watch is None:
            return table
        watch(table)
        while True:
            s.changed.wait()
            s.changed.clear()
            time.sleep(0.2)  # a device sends its values in a burst: one table for it
            watch(s.table())
    finally:
        client.loop_stop()
        client.disconnect()
