"""The demo worlds of `epx sim`: for each profile, the device models attached at boot, the
input pins' levels and the live inputs that keep it busy, so that every profile comes up as
a healthy appliance (the same world entries the device tests put in `Device.world`)."""

import re
import time

OLED = {"bus": "i2c0", "model": "SSD1306", "addr": 0x3C, "name": "oled", "args": {}}


def wet(n):
    """MCP23017 bits of an h2o tank with the lowest n float switches wet (driven low)."""
    return 0xFFFF & ~((1 << n) - 1)


def fill(n, at_s):
    """The h2o tank's float switch n (counting from 1) goes wet `at_s` device seconds in."""
    return (at_s, "model.call", {"name": "mcp", "method": "open_switches", "args": [wet(n)]})


def released(*pins, level=1):
    """Input pins at rest (active-low buttons read 1 when released)."""
    return {str(p): level for p in pins}


# Per profile: "models" (model.attach arguments with a name), "pins" (input levels), "live"
# ((device seconds since the first boot, op, args): inputs that change as time goes on),
# "display" (the model whose text is shown), "peer" (a second device on the ESP-NOW air,
# with "config" keys changed in its config.txt.example and started "after" a console line),
# "by" (a config key whose value picks the world from the entry).
WORLDS = {
    "bare": {},
    "h2o": {
        "models": [
            {"bus": "i2c0", "model": "MCP23017", "addr": 0x20, "name": "mcp",
             "args": {"inputs": 0, "floating": wet(2)}},  # switches at 20% and 40% wet
            OLED,
        ],
        # 4 L/min from a meter of 4.8 pulses/s per L/min (config.txt.example) into 1000 L:
        # a switch every 200 L (50 min), full after 150 min, when the pump stops.
        "live": [
            (0, "pin.pulses", {"pin": 14, "hz": 19.2, "count": 172800, "jitter": 0.02}),
            fill(3, 3000), fill(4, 6000), fill(5, 9000),
        ],
        "display": "oled",
    },
    "switch": {
        "by": "driver",
        "dtwonder8": {"models": [
            {"bus": "pins", "model": "HC595", "name": "out",
             "args": {"ser": 13, "clk": 14, "latch": 15, "latch_pullup": True}},
            {"bus": "pins", "model": "HC165", "name": "in",
             "args": {"clk": 14, "load": 32, "qh": 16, "inputs": 0xFF}},  # all released
        ]},
        "Direct4": {"pins": released(26, 34, 33, 35)},
        "dtwonder2": {"pins": released(36, 39)},
        "dtwonder4": {"pins": released(36, 39, 33, 35)},
        "hoffer6": {"pins": released(36, 39, 32, 33, 25, 26, 27, 14, level=0)},
        "minir4": {"pins": released(27, 0)},
    },
    "relay": {"models": [OLED], "display": "oled"},
    "energy": {"models": [
        {"bus": "uart2", "model": "PZEM", "name": "pzem",
         "args": {"voltage": 231.4, "current": 2.35, "power": 473.0, "pf": 0.87,
                  "frequency": 50.0, "energy": 1234567}},
    ]},
    "weather": {
        "models": [
            {"bus": "i2c0", "model": "HDC1080", "addr": 0x40, "name": "hdc",
             "args": {"temperature": 21.5, "humidity": 45.0}},
            {"bus": "i2c0", "model": "BME280", "addr": 0x76, "name": "bme",
             "args": {"temperature": 21.3, "pressure": 1013.2, "humidity": 46.0}},
            OLED,
        ],
        "display": "oled",
    },
    "scale_manager": {
        # The MACs of profiles/scale*/config.txt.example; the sensor weighs 25 kg
        # (calibration_a 0.0001) every minute ("config": keys changed in its example),
        # starting once the manager listens ("after": a line of its console).
        "mac": "240ac4123456",
        "peer": {"profile": "scale", "mac": "240ac4654321", "config": {"sleep": 1},
                 "after": r"ESP-NOW on channel", "models": [
            {"bus": "pins", "model": "HX711", "name": "cell",
             "args": {"dout": 32, "sck": 33, "value": 250000, "powerdown_us": 5000}},
        ]},
    },
    "scale": {"models": [
        {"bus": "pins", "model": "HX711", "name": "cell",
         "args": {"dout": 32, "sck": 33, "value": 250000, "powerdown_us": 5000}},
    ]},
}


def config_value(config, key):
    found = re.search(rf"(?m)^\s*{key}\s+(\S+)", config)
    return found.group(1) if found else None


def access_point(config):
    """The WiFi world's access point that `config` (config.txt text) names: the demo world
    has the user's network (ssid, password, channel), as the real one would."""
    keys = {}
    for line in config.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] in ("ssid", "password", "channel"):
            keys[parts[0]] = parts[1]
    if keys.get("ssid", "(wired)") == "(wired)":
        return {}
    ap = {"ssid": keys["ssid"], "password": None if keys.get("password", "None") == "None"
          else keys["password"]}
    if keys.get("channel", "").isdigit():
        ap["channel"] = int(keys["channel"])
    return ap


# The network the README's `epx config ... set ssid "New Net" password "new passphrase"`
# moves a device to: the demo world has it too, so the example works as written.
README_NETWORK = {"ssid": "New Net", "password": "new passphrase", "channel": 1, "rssi": -60}


def networks(config):
    """The demo world's WiFi: the access point `config` names, and the README's other one."""
    ap = access_point(config)
    return {"aps": [ap, README_NETWORK]} if ap else {}


def world(profile, config=""):
    """The demo world of `profile` running `config` (the text of config.txt); {} if none."""
    entry = WORLDS.get(profile, {})
    if "by" in entry:
        entry = entry.get(config_value(config, entry["by"]), {})
    return entry


def attach(dev, entry):
    """Put the entry's models and pins into the world `dev` gets at every boot."""
    dev.world["models"] += [dict(m, args=dict(m.get("args", {}))) for m in entry.get("models", ())]
    dev.world["pins"].update(entry.get("pins", {}))


class Live:
    """An entry's live inputs on one device: each op goes out at its device second since the
    first boot (device time: real time times the clock scale); a pulse train cut by a reset
    goes on after it with the pulses it had left, as a meter's pulses would."""

    def __init__(self, entry):
        self.pending = sorted(entry.get("live", ()), key=lambda e: e[0])
        self.trains = []  # (device second it started, pin.pulses args)
        self.boots = 0
        self.t0 = None

    def tick(self, dev):
        if not dev.boots or dev.boots[-1].get("hello") is None:
            return
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        t = (now - self.t0) * dev.world["clock_scale"]
        if len(dev.boots) > self.boots:
            if self.boots:
                for start, args in self.trains:
                    left = int(args["count"] - (t - start) * args["hz"])
                    if left > 0:
                        dev.post("pin.pulses", **dict(args, count=left))
            self.boots = len(dev.boots)
        while self.pending and self.pending[0][0] <= t:
            _, op, args = self.pending[0]
            if not dev.post(op, **args):
                return
            self.pending.pop(0)
            if op == "pin.pulses":
                self.trains.append((t, args))
