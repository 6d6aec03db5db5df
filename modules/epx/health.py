# The device's health for Home Assistant: one JSON publication, stat/<n>/Health, that
# diagnostic entities read a field each of. Facts only the caller knows (why the device
# reset, whether it runs in safe mode) come in as values and a callback.
import gc
import network

from epx import mqtt, net
from epx.version import VERSION

_CHECK_S = const(60)
_FORCE_S = const(1800)

_DIAGNOSTIC = "diagnostic"
# key: (name, component, device class, unit, state class)
_FIELDS = (
    ("rssi", "WiFi signal", "sensor", "signal_strength", "dBm", "measurement"),
    ("ip", "IP address", "sensor", None, None, None),
    ("heap", "Free heap", "sensor", "data_size", "B", "measurement"),
    ("reset", "Last reset", "sensor", None, None, None),
    ("version", "Firmware", "sensor", None, None, None),
    ("netlost", "Network losses", "sensor", None, None, "total_increasing"),
    ("mqttlost", "Broker losses", "sensor", None, None, "total_increasing"),
    ("safe", "Safe mode", "binary_sensor", "problem", None, None),
)


def start(reset_cause, safe_mode):
    """reset_cause: text; safe_mode(): True while the device runs in safe mode."""
    wifi = isinstance(net.nic, network.WLAN)

    def health():
        h = {"ip": net.ip() or "", "heap": gc.mem_free(), "reset": reset_cause,
             "version": VERSION, "netlost": net.lost(), "mqttlost": mqtt.lost(),
             "safe": "ON" if safe_mode() else "OFF"}
        if wifi:
            try:  # the link may have gone since net last looked: "Wifi Not Connected"
                h["rssi"] = net.nic.status("rssi")
            except OSError:
                h["rssi"] = None
        return h

    entities = []
    for key, name, component, device_class, unit, state_class in _FIELDS:
        if key == "rssi" and not wifi:
            continue
        entities.append({"key": key, "name": name, "component": component,
                         "entity_category": _DIAGNOSTIC, "device_class": device_class,
                         "unit_of_measurement": unit, "state_class": state_class})
    mqtt.pub("Health", health, _json, check_s=_CHECK_S, force_s=_FORCE_S, ha=entities)


def _json(value):
    import json

    return json.dumps(value)
