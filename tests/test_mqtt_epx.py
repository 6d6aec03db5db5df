"""epx.net and epx.mqtt in a simulated device (tests/firmware/netcheck) against a real
mosquitto: what a subscriber sees."""

import json

import pytest

from epx import diag

from devconfig import config_text

NAME = "nc"
START_MS = 12000  # app starts net and MQTT this long after boot


def config(broker, **extra):
    return config_text(broker, NAME, **{"mqttkeepalive": 10, "watchdog": 0, **extra})


def boot(device, broker, files=None, heapsize=None, **extra):
    """A started netcheck device whose network starts now."""
    files = dict(files or {}, **{"config.txt": config(broker, **extra)})
    kw = {"heapsize": heapsize} if heapsize else {}
    dev = device("netcheck", files=files, **kw)
    dev.wait_console("netapp ready")
    dev.advance(START_MS)
    return dev


@pytest.fixture
def online(device, broker, mqtt_watch):
    """A netcheck device up on the broker: (device, watch)."""
    def make(**extra):
        w = mqtt_watch(broker)
        dev = boot(device, broker, **extra)
        w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
        return dev, w
    return make


def test_boot_to_first_publish(online, broker, mqtt_watch):
    dev, w = online()
    assert w.wait_for(f"stat/{NAME}/Value", device=dev)[1] == "0"
    assert w.wait_for(f"stat/{NAME}/Uptime", device=dev)[1] == "0"
    assert w.wait_for(f"stat/{NAME}/Volume", device=dev)[1] == "0.0"
    _, cfg, _ = w.wait_for(f"homeassistant/sensor/{NAME}/Value/config", lambda p: p, device=dev)
    doc = json.loads(cfg)
    later = mqtt_watch(broker)  # sees what the broker retained
    assert later.wait_for(f"homeassistant/sensor/{NAME}/Value/config")[1:] == (cfg, True)
    assert later.wait_for(f"stat/{NAME}/Volume")[1:] == ("0.0", True)
    assert later.wait_for(f"stat/{NAME}/LWT")[1:] == ("Online", True)
    assert doc["state_topic"] == f"stat/{NAME}/Value"
    assert doc["availability_topic"] == f"stat/{NAME}/LWT"
    assert doc["device_class"] == "temperature" and doc["unit_of_measurement"] == "°C"
    assert doc["device"]["model"] == "netcheck" and doc["device"]["sw_version"]
    assert w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), device=dev)


# Home Assistant's allowed state classes for the device classes epx uses (its sensor
# documentation, "Available device classes" and "Available state classes").
HA_STATE_CLASSES = {
    "temperature": {"measurement"}, "volume": {"total", "total_increasing"},
    "signal_strength": {"measurement"}, "data_size": {"measurement", "total", "total_increasing"},
    "duration": {"measurement", "total", "total_increasing"},
}
HEALTH = {"rssi", "ip", "heap", "reset", "version", "netlost", "mqttlost", "safe"}


def discovery(w, dev, since=0):
    """{unique id suffix: config} of every discovery config the device sent (after since)."""
    w.wait_for(f"homeassistant/button/{NAME}/Refresh/config", lambda p: p, since=since,
               device=dev)  # the last
    configs = {}
    for t, p, _ in w.messages[since:]:
        if t.startswith("homeassistant/") and t.endswith("/config") and f"/{NAME}/" in t and p:
            configs[t.split("/")[3]] = json.loads(p)
    return configs


def test_discovery_gives_home_assistant_a_whole_device(online, mqtt_watch, broker):
    dev, w = online()
    configs = discovery(w, dev)
    mac = dev.mac
    assert {"Value", "Volume", "Uptime", "Refresh"} | {f"Health_{k}" for k in HEALTH} <= set(configs)
    for uid, doc in configs.items():
        assert doc["unique_id"] == f"epx_{mac}_{uid}"
        assert doc["device"]["identifiers"] == [f"epx_{mac}"]
        assert doc["device"]["connections"] == [["mac", ":".join(mac[i:i + 2] for i in range(0, 12, 2))]]
        assert doc["origin"]["name"] == "epx" and doc["origin"]["sw_version"] == doc["device"]["sw_version"]
        assert "/" not in doc["name"] and doc["name"][0].isupper()
        if "unit_of_measurement" in doc and uid != "Refresh":
            assert doc["state_class"] in HA_STATE_CLASSES[doc["device_class"]], uid
    assert configs["Value"]["suggested_display_precision"] == 0
    assert configs["Volume"]["suggested_display_precision"] == 1
    assert configs["Refresh"]["command_topic"] == f"cmnd/{NAME}/Refresh" and "state_topic" not in configs["Refresh"]
    for k in HEALTH:
        doc = configs[f"Health_{k}"]
        assert doc["entity_category"] == "diagnostic" and doc["value_template"] == "{{ value_json.%s }}" % k
    assert configs["Health_safe"]["device_class"] == "problem"
    health = json.loads(w.wait_for(f"stat/{NAME}/Health", device=dev)[1])
    assert set(health) == HEALTH
    assert health["ip"].startswith("192.168.") and health["heap"] > 0 and health["safe"] == "OFF"
    assert health["reset"] == "power on" and health["version"] == configs["Value"]["device"]["sw_version"]
    assert isinstance(health["rssi"], int) and -100 < health["rssi"] < 0


def test_home_assistant_restart_gets_every_state_back(online, broker, mqtt_watch):
    """States are retained: a subscriber that comes later (Home Assistant restarting) has
    every one from the broker at once. After Home Assistant announces itself the device
    sends discovery and right after it, no device time passing, every state."""
    dev, w = online()
    discovery(w, dev)
    names = ("Value", "Tick", "Uptime", "Health")
    for name in names:
        w.wait_for(f"stat/{NAME}/{name}", device=dev)
    dev.call("clock.scale", factor=1e-6)  # device time all but stands still: no timer fires
    later = mqtt_watch(broker)
    for name in names:
        assert later.wait_for(f"stat/{NAME}/{name}")[2] is True  # retained
    m = w.mark()
    w.publish("homeassistant/status", "online")
    configs = discovery(w, dev, since=m)
    assert "Value" in configs
    last_config = max(i for i in range(m, len(w.messages)) if w.messages[i][0].endswith("/config"))
    for name in names:
        w.wait_for(f"stat/{NAME}/{name}", since=last_config + 1, device=dev)


def test_names_and_ids_a_user_would_choose(online):
    dev, w = online()
    configs = discovery(w, dev)
    units = {doc.get("unit_of_measurement") for doc in configs.values()} - {None}
    for uid, doc in configs.items():
        name = doc["name"]
        assert name not in units and not name.lower().startswith(NAME), uid
        assert doc["object_id"] == NAME + "_" + "_".join(
            "".join(c if c.isalnum() else " " for c in name.lower()).split()), uid
    assert configs["Health_heap"]["object_id"] == "nc_free_heap"
    device = configs["Value"]["device"]
    colons = ":".join(dev.mac[i:i + 2] for i in range(0, 12, 2))
    assert (device["hw_version"], device["serial_number"]) == ("EPX_ESP32", colons)


def test_first_connection_clears_each_topic_before_announcing_it(online):
    """A firmware before the compatibility promise (41c0f67) announced the same topics with
    other unique_ids: on its first connection this one clears each topic just before
    announcing it (Home Assistant removes the old entity and takes the new one under the
    same id), once; the retired topics are cleared on every connection."""
    dev, w = online()
    configs = discovery(w, dev)
    first = [(t, p) for t, p, _ in w.messages if t.startswith("homeassistant/")]
    for uid in configs:
        topic = next(t for t, _ in first if t.endswith(f"/{uid}/config"))
        i = first.index((topic, b""))
        assert first[i + 1][0] == topic and first[i + 1][1], uid
    m = w.mark()
    w.publish("homeassistant/status", "online")
    discovery(w, dev, since=m)
    again = [(t, p) for t, p, _ in w.messages[m:] if t.startswith("homeassistant/") and t.endswith("/config")]
    assert [t for t, p in again if not p] == []  # nothing cleared but the retired ones (none here)


def test_restart_from_home_assistant_only_when_the_user_allows_it(online):
    dev, w = online()
    assert "Restart" not in discovery(w, dev)
    w.publish(f"cmnd/{NAME}/Restart", "PRESS")  # nothing listens: no reboot
    allowed, w2 = online(haunsigned="restart")  # same name: the command reaches both devices
    doc = json.loads(w2.wait_for(f"homeassistant/button/{NAME}/Restart/config", lambda p: p,
                                 device=allowed)[1])
    assert doc["command_topic"] == f"cmnd/{NAME}/Restart" and doc["device_class"] == "restart"
    w2.publish(doc["command_topic"], "PRESS")
    assert allowed.wait_exit(1)["exit"] == 10  # machine.reset()
    assert "restart from Home Assistant" in allowed.output(1)
    # Its Last reset says what the device logged, not the chip's "hard reset".
    m = w2.mark()
    allowed.advance(START_MS)
    health = w2.wait_for(f"stat/{NAME}/Health", lambda p: json.loads(p)["reset"] != "power on",
                         since=m, device=allowed)[1]
    assert json.loads(health)["reset"] == "restart from Home Assistant"
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0]


def test_commands_values_and_garbage(online):
    dev, w = online()
    w.wait_for(f"stat/{NAME}/Value", lambda p: p == "0", device=dev)
    m = w.mark()
    w.publish(f"cmnd/{NAME}/Set", "42")
    dev.advance(1000)
    assert w.wait_for(f"stat/{NAME}/Value", since=m, device=dev)[1] == "42"
    w.publish(f"cmnd/{NAME}/Set", "forty")
    assert "bad command" in w.wait_for(f"stat/{NAME}/Log", lambda p: "Set" in p, since=m, device=dev)[1]
    w.publish(f"cmnd/{NAME}/Set", b"\xff\xfe")
    w.publish(f"cmnd/{NAME}/OTA", "frobnicate")
    assert "unknown command" in w.wait_for(f"stat/{NAME}/Log", lambda p: "OTA" in p, since=m, device=dev)[1]
    w.publish(f"cmnd/{NAME}/OTA", "getversion")
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("netcheck-"), since=m, device=dev)
    w.publish(f"cmnd/{NAME}/OTA", "partitions")
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("running ota_0, next ota_1"), since=m,
               device=dev)
    w.publish(f"cmnd/{NAME}/OTA", "stats")
    assert w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("connlost"), since=m,
                      device=dev)[1] == "connlost events net 0 mqtt 0"


def test_retained_commands_ignored(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    w.publish(f"cmnd/{NAME}/Set", "7", retain=True)  # waits for the device's subscription
    w.publish(f"cmnd/{NAME}/OTA", "msg_rm", retain=True)
    dev = boot(device, broker)
    dev.wait_console(r"retained cmnd/nc/Set ignored")
    dev.wait_console(r"retained cmnd/nc/OTA ignored")
    dev.advance(2000)
    w.publish(f"cmnd/{NAME}/OTA", "stats")  # a live command still works
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("connlost"), device=dev)
    assert all(p != b"7" for t, p, _ in w.messages if t == f"stat/{NAME}/Value")
    assert not [p for t, p, _ in w.messages if t == f"stat/{NAME}/Log" and b"refused" in p]


def test_refresh_and_homeassistant_status(online):
    dev, w = online()
    w.wait_for(f"homeassistant/sensor/{NAME}/Value/config", device=dev)
    m = w.mark()
    w.publish(f"cmnd/{NAME}/Refresh", "")
    w.wait_for(f"stat/{NAME}/Value", since=m, device=dev)
    w.wait_for(f"stat/{NAME}/Uptime", since=m, device=dev)
    w.publish("homeassistant/status", "online")
    w.wait_for(f"homeassistant/sensor/{NAME}/Volume/config", since=m, device=dev)


def restart_broker(broker, proxy, watch, mqtt_watch):
    """Restart the broker; the device (connected through `proxy`) stays away until a new
    watch listens. That watch; the old one is closed."""
    proxy.set("drop")
    broker.restart()
    watch.close()
    watch = mqtt_watch(broker)
    proxy.set("pass")
    return watch


def test_broker_restart(online, broker, proxy, mqtt_watch):
    dev, w = online(mqttport=proxy.port)
    w.wait_for(f"homeassistant/sensor/{NAME}/Value/config", device=dev)
    w = restart_broker(broker, proxy, w, mqtt_watch)
    dev.advance(1000)
    # the retained LWT the restarted broker has lost comes back: Online again
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", timeout=20, device=dev)
    w.wait_for(f"homeassistant/sensor/{NAME}/Value/config", device=dev)
    w.wait_for(f"stat/{NAME}/Value", device=dev)
    w.publish(f"cmnd/{NAME}/Set", "5")  # resubscribed
    dev.advance(1000)
    w.wait_for(f"stat/{NAME}/Value", lambda p: p == "5", device=dev)
    w.publish(f"cmnd/{NAME}/OTA", "stats")
    w.wait_for(f"stat/{NAME}/Log", lambda p: p == "connlost events net 0 mqtt 1", device=dev)


def test_connection_reset_lwt_and_qos1(online, broker, proxy, mqtt_watch):
    # No Home Assistant: the refresh after discovery would send every state again anyway.
    dev, w = online(mqttport=proxy.port, homeassistant=0)
    w.wait_for(f"stat/{NAME}/Tick", device=dev)
    m = w.mark()
    proxy.set("blackhole")
    w.publish(f"cmnd/{NAME}/Count", "x")  # never reaches the device: the link is a blackhole
    dev.advance(10000)  # a new Tick (QoS 1) goes into the blackhole
    tick = str(dev.call("clock.now") // 10_000_000)
    proxy.reset(then="pass")  # RST both ways: the broker publishes the will
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Offline", since=m, device=dev)
    dev.advance(1000)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=m, timeout=20, device=dev)
    w.wait_for(f"stat/{NAME}/Tick", lambda p: p == tick, since=m, device=dev)
    w.wait_for(f"stat/{NAME}/Value", since=m, device=dev)  # state republished
    w.publish(f"cmnd/{NAME}/Count", "x")
    assert w.wait_for(f"stat/{NAME}/Counted", since=m, device=dev)[1] == "1"
    values = [p for t, p, _ in w.messages[m:] if t == f"stat/{NAME}/Value"]
    assert values == [b"0"]  # once, not once per attempt


def test_half_open_detected(online, proxy):
    # Within one keepalive of the last packet received (docs/core.md); the device says how
    # long it heard nothing. The clock moves in 250 ms steps: that is the slack allowed.
    dev, w = online(mqttport=proxy.port, mqttkeepalive=10)
    w.wait_for(f"stat/{NAME}/Value", device=dev)
    mark = dev.console_mark()
    proxy.set("blackhole")
    for _ in range(80):
        dev.advance(250)
        if "KeepaliveTimeout" in dev.output():
            break
    line = dev.wait_console(r"W mqtt: lost: KeepaliveTimeout (\d+)", since=mark)
    assert 5000 <= int(line.group(1)) <= 10000 + 250


def signed(key, text, counter):
    return diag.sign(key, NAME, text, counter)


def test_dangerous_commands_need_a_signature(online):
    dev, w = online(ota_key="k3y with spaces")
    m = w.mark()
    for bad in ("reboot", "resetstats", signed("wrong key", "msg_rm", 5),
                signed("k3y with spaces", "reboot", 7)[:-1] + "0"):
        w.publish(f"cmnd/{NAME}/OTA", bad)
        w.wait_for(f"stat/{NAME}/Log", lambda p: "refused" in p, since=m, device=dev)
        m = w.mark()
    w.publish(f"cmnd/{NAME}/OTA", signed("k3y with spaces", "resetstats", 10))
    w.wait_for(f"stat/{NAME}/Log", lambda p: p == "stats reset", since=m, device=dev)
    w.publish(f"cmnd/{NAME}/OTA", signed("k3y with spaces", "resetstats", 10))  # replayed
    w.wait_for(f"stat/{NAME}/Log", lambda p: "replayed" in p, since=m, device=dev)
    assert dev.boots[-1].get("exit") is None
    w.publish(f"cmnd/{NAME}/OTA", signed("k3y with spaces", "reboot", 11))
    w.wait_for(f"stat/{NAME}/Log", lambda p: p == "rebooting", since=m, device=dev)
    dev.advance(1000)
    dev.wait_boot(2, timeout=20)
    dev.wait_console("netapp ready", boot=2, timeout=20)
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("reboot: command reboot"), since=m,
               timeout=20, device=dev)


@pytest.mark.parametrize("where", ["now", "timer"])
def test_exception_in_a_callback_reported_after_reboot(online, where):
    dev, w = online()
    m = w.mark()
    w.publish(f"cmnd/{NAME}/Crash", where)
    dev.wait_boot(2, timeout=20)
    dev.wait_console("netapp ready", boot=2, timeout=20)
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: "ZeroDivisionError" in p and p.startswith("exception"),
               since=m, timeout=20, device=dev)
    w.publish(f"cmnd/{NAME}/OTA", "msg_exception")
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("Traceback"), since=m, device=dev)


def test_broker_away_longer_than_the_reboot_threshold(online, proxy):
    dev, w = online(mqttport=proxy.port, mqttreboot=60)
    m = w.mark()
    mark = dev.console_mark()
    proxy.set("drop")
    dev.wait_console("mqtt: lost", since=mark)
    dev.advance(70000)  # one jump: no call may race the reboot
    assert dev.wait_boot(2, timeout=20)["reset_cause"] == 2  # HARD_RESET: machine.reset()
    proxy.set("pass")
    dev.wait_console("netapp ready", boot=2, timeout=20)
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("reboot: no MQTT broker for 60 s"),
               since=m, timeout=20, device=dev)


def test_user_password(device, broker_auth, mqtt_watch):
    w = mqtt_watch(broker_auth)
    dev = boot(device, broker_auth, mqttuser="epx", mqttpassword="secret")
    w.wait_for(f"stat/{NAME}/Value", device=dev)


def test_wrong_password_refused_then_retried(device, broker_auth, mqtt_watch):
    dev = boot(device, broker_auth, mqttuser="epx", mqttpassword="wrong")
    dev.wait_console(r"mqtt: connect: ConnectRefused 5")


def test_tls_broker(device, broker_tls, mqtt_watch, test_ca, ntp):
    w = mqtt_watch(broker_tls)
    dev = boot(device, broker_tls, files={"ca.der": test_ca.ca_der}, mqttbroker="localhost",
               mqttca="ca.der", ntpserver=ntp.server)
    w.wait_for(f"stat/{NAME}/Value", device=dev)


def test_heap_of_net_and_mqtt_small_and_stable(device, broker, proxy, mqtt_watch, ntp):
    """Net and MQTT up (discovery sent) take little heap, and free heap after gc.collect()
    holds through reconnections (the clock set once: no SNTP round in flight)."""
    w = mqtt_watch(broker)
    text = config(broker, mqttkeepalive=10, mqttport=proxy.port, ntpserver=ntp.server)
    dev = device("netcheck", files={"config.txt": text})
    dev.wait_console("netapp ready")
    before = dev.call("state")["mem_alloc"]
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Value", device=dev)
    w.wait_for(f"homeassistant/sensor/{NAME}/Volume/config", device=dev)
    used = [dev.call("state")["mem_alloc"]]
    for i in range(5):
        w = restart_broker(broker, proxy, w, mqtt_watch)
        dev.advance(4000)  # past the backoff
        w.wait_for(f"stat/{NAME}/Value", timeout=20, device=dev)
        w.wait_for(f"homeassistant/sensor/{NAME}/Volume/config", device=dev)
        used.append(dev.call("state")["mem_alloc"])
    assert used[0] - before < 20 * 1024, (before, used)
    # less than the log ring fills meanwhile (32 lines, UTC-stamped once the time is known)
    assert max(used[2:]) <= used[1] + 3072, used


def test_hostile_broker_never_crashes_the_device(device, broker, mqtt_watch):
    """Every hostile-broker scenario, then 50 generated malformed packets, one per
    connection: the device reports each one's error in order, backs off and retries,
    and on the first normal connection (relayed to mosquitto) it comes up and publishes,
    all on its first boot."""
    import socket

    from mqttfuzz import generate
    from mqttkit import CONNACK_OK, FakeBroker, read_packet, relay
    from test_mqtt_client import HOSTILE

    cases = [(p, e) for p, e in HOSTILE]
    cases += [(CONNACK_OK + p, e) for p, e in generate(7, 50)]

    def handler(conn, i):
        if i >= len(cases):
            return relay(conn, fake.connects[i], broker.port)
        conn.sendall(cases[i][0])
        if cases[i][1] != "Timeout":
            conn.shutdown(socket.SHUT_WR)
        while read_packet(conn):
            pass

    fake = FakeBroker(handler)
    w = mqtt_watch(broker)
    dev = boot(device, broker, mqttport=fake.port, mqttreboot=86400)
    seen = []
    mark = 0
    for i, (_, error) in enumerate(cases):
        if error == "Timeout":  # the CONNACK never completes: the client gives up after 10 s
            dev.advance(10000)
        line = dev.wait_console(r"mqtt: (connect|lost): (\w+).*retry in (\d+) ms", since=mark)
        seen.append(line.group(2))
        mark = dev.console_mark()
        # Past the backoff and its jitter, in steps, and no further once the device is
        # connected: its time must not run ahead of the broker's answer.
        for _ in range(int(line.group(3)) * 3 // 2 // 1000 + 1):
            if fake.count > i + 1:
                break
            dev.advance(1000)
        assert fake.wait_count(i + 2), dev.output()
    assert seen == [e for _, e in cases]
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    w.wait_for(f"stat/{NAME}/Value", device=dev)
    assert len(fake.connects) == len(cases) + 1
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0]
    fake.close()


def test_while_away_only_the_newest_value_is_kept(online, proxy):
    dev, w = online(mqttport=proxy.port)
    w.wait_for(f"stat/{NAME}/Tick", device=dev)
    mark = dev.console_mark()
    proxy.set("drop")
    dev.wait_console(r"mqtt: lost", since=mark)
    before = int(dev.call("clock.now") // 10_000_000)  # the last Tick handed to the client
    for _ in range(6):  # Tick takes six new values while the broker is away
        dev.advance(10000)
    m = w.mark()
    tick = int(dev.call("clock.now") // 10_000_000)
    proxy.set("pass")
    dev.advance(20000)  # past the backoff (the clock moves on: two more ticks at most)
    w.wait_for(f"stat/{NAME}/Tick", lambda p: int(p) >= tick, since=m, timeout=20, device=dev)
    ticks = [int(p) for t, p, _ in w.messages[m:] if t == f"stat/{NAME}/Tick"]
    # a QoS 1 Tick in flight at the loss may come again; none of the values in between
    assert not [x for x in ticks if before < x < tick], (before, tick, ticks)


def test_tls_without_its_ca_file_never_falls_back(device, broker_tls, ntp):
    dev = boot(device, broker_tls, mqttbroker="localhost", mqttca="missing.der",
               ntpserver=ntp.server)
    dev.wait_console(r"mqtt: connect: OSError mqttca missing.der")
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0]
