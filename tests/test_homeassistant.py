"""Every profile in a real Home Assistant Core (make test-ha; skipped without
$EPX_HA_PYTHON): the simulated appliances in their demo worlds publish to the test's
mosquitto, Home Assistant's MQTT integration discovers them, and its REST API says what a
user would see: each entity with its device class, unit and state class, states known
within seconds of a Home Assistant restart, availability from the LWT, a button press
reaching the device, long-term statistics recorded, an update offered with `epx ota --offer`
installed from Home Assistant (and a forged offer refused and shown as such), and no MQTT
complaint in its log."""

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
        f"update.{_name}_update": ("firmware", None, None),
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


def attributes(ha, entity_id):
    return (ha.states().get(entity_id) or {}).get("attributes", {})


def test_an_offered_update_installed_through_home_assistant(world, device):
    # An appliance of the OTA tests' profile (built as versions 1.0 and 2.0), its clock fast
    # so that the new version's health check passes quickly.
    ha, _, broker = world
    from brokerkit import MqttWatch
    from epx import ota
    from otakit import KEY, SCALE, config, image

    name, entity = "otaha", "update.otaha_update"
    before = len(ha.mqtt_problems())  # the broken payload's, caught above
    dev = device(image("1.0"), config=config(broker, name, homeassistant=1, ota_healthy_s=5),
                 name=name)
    dev.call("clock.scale", factor=SCALE)
    ha.wait(lambda: attributes(ha, entity).get("installed_version") == "ota_app-1.0", 120,
            "the update entity")
    target = ota.Target(name, KEY, broker.host, broker.port, None, None)
    img = ota.load_image(image("2.0"))
    server = ota.ImageServer(img.data, host="127.0.0.1")
    url = server.url("127.0.0.1")
    w = MqttWatch(broker.host, broker.port, (f"stat/{name}/#",))
    try:
        # A forged offer (signed with another key): refused, and Home Assistant says so.
        forged = ota.request(target._replace(key="not-the-key"), img, url, 10, verb="offer")
        w.publish(f"cmnd/{name}/Offer", json.dumps(forged), retain=True, qos=1)
        a = ha.wait(lambda: attributes(ha, entity).get("release_summary") or None, 60, "the refusal")
        assert a == "Offer refused: bad hmac"
        s = ha.states()[entity]
        assert (s["state"], s["attributes"]["latest_version"]) == ("off", "ota_app-1.0")

        # The genuine offer, as `epx ota --offer` makes it: shown with its release notes.
        r = ota.offer(target, img, url, release_url="https://example.org/epx/2.0")
        assert r.outcome == "offered", r
        s = ha.wait(lambda: attributes(ha, entity).get("latest_version") == "ota_app-2.0"
                    and ha.states()[entity], 60, "the offer")
        assert s["state"] == "on"
        assert (s["attributes"]["installed_version"], s["attributes"]["release_url"],
                s["attributes"]["release_summary"]) == ("ota_app-1.0", "https://example.org/epx/2.0", "")

        # Install, pressed in Home Assistant: the device fetches the offered image, reboots,
        # keeps it, and the entity shows the new version installed; meanwhile the progress.
        changes = ha.state_changes(entity)
        try:
            ha.service("update", "install", entity_id=entity)
            s = ha.wait(lambda: attributes(ha, entity).get("installed_version") == "ota_app-2.0"
                        and ha.states()[entity], 120, "the new version installed")
        finally:
            changes.close()
        assert (s["state"], s["attributes"]["latest_version"], s["attributes"]["in_progress"]) == \
            ("off", "ota_app-2.0", False)
        w.wait_for(f"stat/{name}/OTA", lambda p: json.loads(p)["state"] == "kept", timeout=60,
                   device=dev)
        assert server.gets == 1 and [b["version"] for b in dev.boots][-1] == "ota_app-2.0"
        seen = [x["attributes"].get("update_percentage") for x in changes.states
                if x["attributes"].get("in_progress")]
        assert seen and seen == sorted(seen) and all(0 <= p <= 100 for p in seen), changes.states
    finally:
        w.publish(f"cmnd/{name}/Offer", "", retain=True, qos=1)
        w.close()
        server.close()
    assert ha.mqtt_problems()[before:] == []


def test_statistics_recorded(world):
    ha, demos, _ = world
    measured = [e for e, (_, unit, state_class) in EXPECTED.items() if state_class]
    ids = {s["statistic_id"]: s for s in ha.ws({"type": "recorder/list_statistic_ids"})}
    assert [e for e in measured if e not in ids] == []
    assert ids["sensor.energy_energy"]["has_sum"] and ids["sensor.energy_w"]["has_mean"]
    issues = ha.ws({"type": "recorder/validate_statistics"})
    assert {e: issues[e] for e in measured if issues.get(e)} == {}

    # Long-term statistics: the recorder compiles each 5-minute period (wall clock) once it
    # has ended, so this waits for the next such moment at most.
    def compiled():
        for d in demos:
            d.tick()
        r = ha.ws({"type": "recorder/statistics_during_period", "start_time": "2000-01-01T00:00:00Z",
                   "statistic_ids": measured, "period": "5minute"})
        return r if all(r.get(e) for e in measured) else None

    r = ha.wait(compiled, 330, "statistics of every measurement", pace=5)
    assert r["sensor.energy_w"][-1]["mean"] is not None
    assert r["sensor.energy_energy"][-1]["sum"] is not None


def test_availability_follows_the_last_will(world):
    # Last: it takes a device away. Its process killed, the broker sends its will.
    ha, demos, _ = world
    weather = next(d for d in demos if d.main.name == "weather")
    ha.wait(lambda: known(ha.states().get("sensor.weather_temperature")), 60, "a temperature")
    weather.stop()
    ha.wait(lambda: ha.states()["sensor.weather_temperature"]["state"] == "unavailable", 60,
            "unavailable after the will")
    assert known(ha.states()["sensor.h2o_uptime"])  # the others stay
