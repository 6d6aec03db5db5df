"""The weather appliance on the simulated board, against a real mosquitto: HDC1080 and
BME280 models on I2C0 and an SSD1306; values, Home Assistant discovery, the malfunction
bitmap, values withdrawn while their chip fails, recovery, the display."""

import json

import pytest

from appliance import Appliance

NAME = "station"
CONFIG = """\
ssid epx-sim
password secret-passphrase
mqttbroker 127.0.0.1
mqttport {port}
mqttname station
"""
SCALE = 10


class Station(Appliance):
    def __init__(self, dev, watch):
        super().__init__(dev, watch, NAME)

    def call(self, model, method, *args):
        return self.dev.call("model.call", name=model, method=method, args=list(args))


@pytest.fixture
def weather(device, broker, mqtt_watch):
    def make(hdc=None, bme=None, oled=True):
        dev = device("weather", config=CONFIG.format(port=broker.port), start=False)
        dev.world["clock_scale"] = SCALE
        dev.world["models"] += [
            {"bus": "i2c0", "model": "HDC1080", "addr": 0x40, "name": "hdc",
             "args": dict({"temperature": 21.5, "humidity": 40.0}, **(hdc or {}))},
            {"bus": "i2c0", "model": "BME280", "addr": 0x76, "name": "bme",
             "args": dict({"temperature": 21.0, "pressure": 1002.3}, **(bme or {}))},
        ]
        if oled:
            dev.world["models"].append({"bus": "i2c0", "model": "SSD1306", "addr": 0x3C,
                                        "name": "oled", "args": {}})
        watch = mqtt_watch(broker, (f"stat/{NAME}/#", f"homeassistant/+/{NAME}/#"))
        dev.start()
        st = Station(dev, watch)
        st.wait("LWT", "Online")
        return st

    return make


def test_values_discovery_and_display(weather):
    st = weather()
    assert st.wait("Temperature") == "21.5"
    assert st.wait("Humidity") == "40.0"
    assert st.wait("Pressure") == "1002.3"
    assert st.wait("Malfunction") == "0"
    classes = {}
    for name in ("Temperature", "Humidity", "Pressure"):
        doc = json.loads(st.watch.wait_for(f"homeassistant/sensor/{NAME}/{name}/config", lambda p: p,
                                           timeout=20)[1])
        classes[name] = (doc["device_class"], doc["unit_of_measurement"])
    assert classes == {"Temperature": ("temperature", "°C"), "Humidity": ("humidity", "%"),
                       "Pressure": ("atmospheric_pressure", "hPa")}
    text = st.call("oled", "text")
    assert text[:4] == ["21.5 C", "40.0 %", "1002.3 hPa", "alt 89 m"], text
    mark = st.mark()
    st.call("hdc", "set", 25.0, 55.5)
    st.call("bme", "set", None, 990.0)
    assert st.wait("Temperature", since=mark, timeout=30) == "25.0"
    assert st.wait("Humidity", since=mark) == "55.5"
    assert st.wait("Pressure", since=mark) == "990.0"


def test_read_errors_withdraw_values_and_recover(weather):
    st = weather()
    st.wait("Temperature", "21.5")
    st.wait("Pressure", "1002.3")
    mark = st.mark()
    st.call("hdc", "fail", 1000000)
    st.wait("Malfunction", "12", since=mark)  # humidity 4 + temperature 8
    st.call("bme", "fail", 1000000)
    st.wait("Malfunction", "28", since=mark)  # + pressure 16
    during = st.mark()
    text = st.call("oled", "text")
    assert text[:4] == ["-", "-", "-", "-"] and "ERR 0x1c" in text, text
    st.until(130)  # two checks of the values: nothing stale goes out
    for name in ("Temperature", "Humidity", "Pressure"):
        assert st.seen(name, since=during) == [], name
    mark = st.mark()
    st.call("hdc", "fail", 0)
    st.call("bme", "fail", 0)
    st.wait("Malfunction", "0", since=mark)
    # withdrawn values are news again at the next check, not at the next forced publication
    assert st.wait("Temperature", since=mark, timeout=30) == "21.5"
    assert st.wait("Humidity", since=mark, timeout=30) == "40.0"
    assert st.wait("Pressure", since=mark, timeout=30) == "1002.3"


def test_absent_chips_at_boot_then_plugged_in(weather):
    st = weather(hdc={"absent": True}, bme={"absent": True}, oled=False)
    assert st.wait("Malfunction") == "3"
    assert st.seen("Temperature") == [] and st.seen("Pressure") == []
    mark = st.mark()
    st.call("bme", "absent", False)
    st.wait("Malfunction", "1", since=mark)
    assert st.wait("Pressure", since=mark) == "1002.3"
    assert st.seen("Temperature") == []
    st.call("hdc", "absent", False)
    st.wait("Malfunction", "0", since=mark)
    assert st.wait("Temperature", since=mark) == "21.5"
