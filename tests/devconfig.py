"""config.txt for a simulated device on the simulated access point and a test's broker."""


def config_text(broker, name, **keys):
    """One `key value` line a key, after the network and MQTT keys; a key set to None is
    left out (a test can drop a default that way)."""
    keys = {"ssid": "epx-sim", "password": "None", "mqttbroker": broker.host,
            "mqttport": broker.port, "mqttname": name, **keys}
    return "".join(f"{k} {v}\n" for k, v in keys.items() if v is not None)
