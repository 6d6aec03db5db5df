"""config.txt for a simulated device on the simulated access point and a test's broker."""

# No NTP server answers there (port 9 is discard): the device's clock stays at its
# power-on 2000-01-01 unless a test gives its own server (the `ntp` fixture).
NO_NTP = "127.0.0.1:9"


def config_text(broker, name, **keys):
    """One `key value` line a key, after the network and MQTT keys; a key set to None is
    left out (a test can drop a default that way)."""
    keys = {"ssid": "epx-sim", "password": "None", "mqttbroker": broker.host,
            "mqttport": broker.port, "mqttname": name, **keys}
    keys.setdefault("ntpserver", NO_NTP)
    return "".join(f"{k} {v}\n" for k, v in keys.items() if v is not None)


def colons(mac):
    """A MAC as config.txt writes it: 240ac4654321 -> 24:0a:c4:65:43:21."""
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))
