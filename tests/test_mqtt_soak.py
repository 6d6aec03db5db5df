"""Days of device time on the broker, the broker restarted now and then: the device stays
on its first boot, keeps publishing, and its heap after gc.collect() does not trend up.
The clock walks (docs/simulator.md, "Device time"): every timer fires at its period, each
Tick is published. It moves in steps shorter than half the keepalive, and after each the
test waits for the device's next QoS 1 Tick (a value of the uptime): the loop kept up.
A walked device-day takes about a minute of a busy host, so the suite runs two;
EPX_SOAK_DAYS=30 is the long run."""

import os

import pytest

from test_mqtt_epx import NAME, START_MS, config, restart_broker

DAY_S = 24 * 3600
KEEPALIVE_S = 65535  # MQTT's longest
STEP_S = 21600  # six hours: < keepalive / 2
DAYS = int(os.environ.get("EPX_SOAK_DAYS", "2"))


@pytest.mark.timeout(300 + DAYS * 300)
def test_days_on_the_broker(device, broker, proxy, mqtt_watch):
    text = config(broker, mqttport=proxy.port, mqttkeepalive=KEEPALIVE_S)
    dev = device("netcheck", files={"config.txt": text})
    w = mqtt_watch(broker)
    dev.wait_console("netapp ready")
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Value", device=dev)
    used = []
    for day in range(DAYS):
        if day % 7 == 1:
            mark = dev.console_mark()
            w = restart_broker(broker, proxy, w, mqtt_watch)
            dev.advance(4000)  # past the backoff; no further step until it is back
            dev.wait_console(r"mqtt: up", since=mark)
        for _ in range(DAY_S // STEP_S):
            m = w.mark()
            # the Tick after this step; -1 as epx's uptime starts a little after the clock
            tick = (dev.call("clock.now") // 1000 + STEP_S * 1000) // 10_000 - 1
            dev.advance(STEP_S * 1000)
            w.wait_for(f"stat/{NAME}/Tick", lambda p: int(p) >= tick, since=m, device=dev)
        used.append(dev.call("state")["mem_alloc"])
    m = w.mark()
    w.publish(f"cmnd/{NAME}/Refresh", "")
    uptime = w.wait_for(f"stat/{NAME}/Uptime", since=m, device=dev)[1]
    assert int(uptime) >= DAYS * DAY_S // 60
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0], dev.output()
    assert max(used[-7:]) <= max(used[:7]) + 2048, used
