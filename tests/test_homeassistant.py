"""Every profile in a real Home Assistant Core (make test-ha; skipped without
$EPX_HA_PYTHON): the simulated appliances in their demo worlds publish to the test's
mosquitto, Home Assistant's MQTT integration discovers them, and its REST API says what a
user would see: each entity with its device class, unit and state class, states known
within seconds of a Home Assistant restart, availability from the LWT, a button press
reaching the device, and no MQTT complaint in its log."""

import json
import time

import pytest

import hakit
from epx.sim.run import Demo, default_config

pytestmark = [pytest.mark.skipif(hakit.python() is None,
                                 reason="no Home Assistant venv ($EPX_HA_PYTHON; make test-ha)"),
              pytest.mark.timeout(900)]

# entity id -> (device class, unit, state class): what Home Assistant must show.
EXPECTED = {
    "sensor.h2o_coarselevelpct": (None, "%", "measurement"),
    "sensor.h2o_coarselevelvol": ("volume_storage", "L", "measurement"),
    "sensor.h2o_flow": ("volume_flow_rate", "L/min", "measurement"),
    "sensor.h2o_pumpedafterlevelchange": ("volume", "L", "total_increasing"),
    "binary_sensor.h2o_malfunction": ("problem", None, None),
    "sensor.energy_v": ("voltage", "V", "measurement"),
    "sensor.energy_w": ("power", "W", "measurement"),
    "sensor.energy_energy": ("energy", "Wh", "total_increasing"),
    "binary_sensor.energy_malfunction": ("problem", None, None),
    "sensor.weather_temperature": ("temperature", "°C", "measurement"),
    "sensor.weather_humidity": ("humidity", "%", "measurement"),
    "sensor.weather_pressure": ("atmospheric_pressure", "hPa", "measurement"),
    "switch.switch_0_state": (None, None, None),
    "switch.relay_0_state": (None, None, None),
    "number.relay_0_ontime": (None, "s", None),
    "sensor.scale_weight": ("weight", "kg", "measurement"),
}
# Every device: its diagnostics and its Refresh button.
for _name in ("h2o", "energy", "weather", "switch", "relay", "scale"):
    EXPECTED.update({
        f"sensor.{_name}_uptime": ("duration", "min", "total_increasing"),
        f"sensor.{_name}_health_heap": ("data_size", "B", "measurement"),
        f"sensor.{_name}_health_rssi": ("signal_strength", "dBm", "measurement"),
        f"binary_sensor.{_name}_health_safe": ("problem", None, None),
        f"button.{_name}_refresh": (None, None, None),
    })
PROFILES = ("h2o", "energy", "weather", "switch", "relay", "scale_manager")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from epx.sim.net import Broker

    folder = tmp_path_factory.mktemp("ha")
    with Broker() as broker:
        ha = hakit.HomeAssistant(hakit.python(), folder / "config", broker).start()
        demos = []
        try:
            for profile in PROFILES:
                demo = Demo(profile, default_config(profile), folder / profile, broker.host,
                            broker.port, lambda text: None)
                demo.start(speed=1)
                demos.append(demo)
            yield ha, demos, broker
        finally:
            for demo in demos:
                demo.stop()
            ha.stop()


def known(state):
    return state is not None and state["state"] not in ("unknown", "unavailable")


def test_every_entity_as_home_assistant_shows_it(world):
    ha, demos, _ = world

    missing = []

    def all_there():
        for d in demos:
            d.tick()
        states = ha.states()
        missing[:] = [e for e in EXPECTED if e not in states]
        return states if not missing else None

    try:
        states = ha.wait(all_there, 180, "every expected entity")
    except AssertionError:
        raise AssertionError(("missing", missing, "have", sorted(ha.states())))
    for entity_id, (device_class, unit, state_class) in EXPECTED.items():
        a = states[entity_id]["attributes"]
        assert (a.get("device_class"), a.get("unit_of_measurement"), a.get("state_class")) == \
            (device_class, unit, state_class), entity_id
    # Yesterday is a daily report, not a measurement: statistics come from Energy and Today.
    measured = [e for e, s in states.items() if e.startswith("sensor.")
                and s["attributes"].get("unit_of_measurement") and e != "sensor.energy_yesterday"]
    assert measured and all(states[e]["attributes"].get("state_class") for e in measured), \
        [e for e in measured if not states[e]["attributes"].get("state_class")]
    assert ha.mqtt_problems() == []


def test_states_known_within_seconds_of_a_restart(world):
    ha, demos, broker = world
    from brokerkit import MqttWatch
    def unknown():
        for d in demos:
            d.tick()
        states = ha.states()
        return [e for e in EXPECTED if not e.startswith("button.") and not known(states.get(e))]

    try:
        ha.wait(lambda: not unknown(), 180, "every state")
    except AssertionError:
        raise AssertionError(("unknown", unknown()))
    w = MqttWatch(broker.host, broker.port, ("homeassistant/status",))
    m = w.mark()
    ha.restart()
    w.wait_for("homeassistant/status", lambda p: p == "online", since=m, timeout=60)
    # when Home Assistant announced itself: the devices' cue
    t0 = next(w.times[i] for i in range(m, len(w.messages)) if w.messages[i][1] == b"online")
    w.close()

    def states_back():
        for d in demos:
            d.tick()
        states = ha.states()
        missing = [e for e in EXPECTED if not e.startswith("button.") and not known(states.get(e))]
        return not missing

    ha.wait(states_back, 30, "states after the restart")
    assert time.monotonic() - t0 <= 5 + 0.5  # 5 s, and the polling's own pace
    assert ha.mqtt_problems() == []


def test_a_button_press_reaches_the_device(world):
    ha, demos, broker = world
    from brokerkit import MqttWatch

    w = MqttWatch(broker.host, broker.port, ("cmnd/weather/#",))
    try:
        ha.press("button.weather_refresh")
        w.wait_for("cmnd/weather/Refresh", timeout=20)
    finally:
        w.close()


def test_a_broken_payload_is_caught(world):
    ha, _, broker = world
    from brokerkit import MqttWatch

    before = len(ha.mqtt_problems())
    bad = {"name": "Bad", "unique_id": "epx_test_bad", "state_topic": "stat/bad/Volume",
           "device_class": "volume", "unit_of_measurement": "L", "state_class": "measurement"}
    w = MqttWatch(broker.host, broker.port, ("stat/bad/#",))
    try:
        w.publish("homeassistant/sensor/bad/Volume/config", json.dumps(bad), retain=True)
        w.publish("stat/bad/Volume", "12")
        ha.wait(lambda: len(ha.mqtt_problems()) > before or None, 60, "Home Assistant's complaint")
    finally:
        w.close()


def test_availability_follows_the_last_will(world):
    # Last: it takes a device away. Its process killed, the broker sends its will.
    ha, demos, _ = world
    weather = next(d for d in demos if d.main.name == "weather")
    ha.wait(lambda: known(ha.states().get("sensor.weather_temperature")), 60, "a temperature")
    weather.stop()
    ha.wait(lambda: ha.states()["sensor.weather_temperature"]["state"] == "unavailable", 60,
            "unavailable after the will")
    assert known(ha.states()["sensor.h2o_uptime"])  # the others stay
