"""Each online profile's world on a simulated device, as its device tests build it: the
MQTT name, config.txt, chip models and pin levels (the profile benches and
test_tls_ram), and the same config reaching its broker over TLS."""

import test_energy_device as energy
import test_h2o_device as h2o
import test_relay_device as relay
import test_scale_device as scale
import test_switch_device as switch
import test_weather_device as weather
from devconfig import config_text

OLED = {"bus": "i2c0", "model": "SSD1306", "addr": 0x3C, "name": "oled"}


def worlds(broker):
    """profile: (MQTT name, config.txt, chip models, pin levels)."""
    return {
        "bare": ("heap", config_text(broker, "heap", ota_key="bench"), [], {}),
        "energy": (energy.NAME, energy.CONFIG.format(port=broker.port), [
            {"bus": "uart2", "model": "PZEM", "name": "pzem",
             "args": {"voltage": 230.0, "current": 1.5, "power": 300.0, "pf": 0.87, "energy": 777}}], {}),
        "h2o": (h2o.NAME, h2o.CONFIG.format(port=broker.port, capacity=200), [
            {"bus": "i2c0", "model": "MCP23017", "addr": 0x20, "name": "mcp",
             "args": {"inputs": 0, "floating": h2o.wet(2)}}, OLED], {}),
        "relay": (relay.NAME, relay.config(broker), [OLED], {}),
        "switch": (switch.NAME, switch.config(broker, "Direct4"), [],
                   {str(p): v for p, v in switch.released().items()}),
        "weather": (weather.NAME, weather.CONFIG.format(port=broker.port), [
            {"bus": "i2c0", "model": "HDC1080", "addr": 0x40, "name": "hdc",
             "args": {"temperature": 21.5, "humidity": 40.0}},
            {"bus": "i2c0", "model": "BME280", "addr": 0x76, "name": "bme",
             "args": {"temperature": 21.0, "pressure": 1002.3}}, OLED], {}),
        "scale_manager": (scale.NAME, scale.MANAGER_CONFIG.format(
            channel=scale.CHANNEL, port=broker.port, pmk=scale.PMK, sensor="24:0a:c4:12:34:56",
            lmk=scale.LMK), [], {}),
    }


def over_tls(config, ntpserver, ca_file="ca.der"):
    """A world's config.txt with its broker reached by its name over TLS (mqttca; TLS
    checks the certificate's dates, so an NTP server too)."""
    keys = dict(line.split(" ", 1) for line in config.splitlines() if line)
    port = keys.pop("mqttport")
    keys.update(mqttbroker=f"localhost:{port}", mqttca=ca_file, ntpserver=ntpserver)
    return "".join(f"{k} {v}\n" for k, v in keys.items())
