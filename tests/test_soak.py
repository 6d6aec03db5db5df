"""Device-days on the broker at full cadence, each profile: every timer at its own period
(the clock walks from deadline to deadline, docs/simulator.md "Device time"), keepalive as
configured (the default), the watchdog on. Each device-hour the heap is sampled after
gc.collect(); the run fails on an upward heap trend above 64 bytes a day (a least-squares
slope over the hourly samples), on a publication missed (counted at the broker: the Uptime
minute of every device-minute, Health every half hour, energy's readings every minute) and
on any reset. A firmware that leaks 16 bytes a publish fails the same check.

The walks of every profile run in `make test-soak` (EPX_SOAK_DAYS, 7 by default;
EPX_SOAK_HOURS for a shorter walk), in CI as a job of their own, 30 device-days on a
schedule. The suite runs only the leaking firmware's 2 device-hours (about a minute): a
walked device-hour costs 25-110 s of host time (docs/decisions.md, "Soak at full cadence")."""

import os

import pytest

from devconfig import config_text
from epx.sim import worlds

HOUR_MS = 3600 * 1000
HOURS = int(os.environ.get("EPX_SOAK_HOURS") or 24 * int(os.environ.get("EPX_SOAK_DAYS") or 0))
LEAK_HOURS = 2
walks = pytest.mark.skipif(not HOURS, reason="device-days: make test-soak")
LEAK_LIMIT = 64  # bytes a day
NAME = "soak"
HEALTH_S = 1800  # epx.health's force_s, its check every 60 s
WALK_S = 900  # real seconds a device-hour may take on the busiest host

# Each profile's config.txt keys beside the network's; its chip models and pins are the
# demo world of `epx sim` (epx.sim.worlds). Topics published every device-minute.
PROFILES = {
    "netcheck": {},
    "energy": {"every_minute": ("V", "A", "W", "PowerFactor")},
    "h2o": {"keys": {"unit": "L", "capacity": 1000, "levelsensors": "20,40,60,80,100"}},
    "weather": {},
    "switch": {"keys": {"driver": "Direct4"}},
    "relay": {},
    "scale_manager": {"keys": {"channel": 6, "pmk": "00112233445566778899aabbccddeeff",
                               "sensor": "24:0a:c4:65:43:21",
                               "sensor_lmk": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}},
}

# A firmware that keeps 16 bytes of every publication (netcheck has no boot.py of its own:
# this one runs before its main.py).
LEAKY_BOOT = """\
import uumqtt
_kept = bytearray()
_publish = uumqtt.MQTTClient.publish
def _leaky(self, *args):
    _kept.extend(b"0123456789abcdef")
    return _publish(self, *args)
uumqtt.MQTTClient.publish = _leaky
"""


def slope_per_day(samples):
    """Least-squares slope of hourly samples, in units a day."""
    n = len(samples)
    assert n >= 2, "a trend needs two samples past the first hour: walk 3 hours or more"
    mx = (n - 1) / 2
    my = sum(samples) / n
    sxx = sum((x - mx) ** 2 for x in range(n))
    sxy = sum((x - mx) * (y - my) for x, y in enumerate(samples))
    return sxy / sxx * 24


def test_slope_of_hourly_samples():
    assert slope_per_day([100 + 2 * h for h in range(10)]) == pytest.approx(48)
    assert slope_per_day([7] * 5) == 0


def soak(device, broker, mqtt_watch, profile, hours, files=None, per_hour=1):
    """Walk `hours` device-hours at full cadence, the heap sampled `per_hour` times an hour
    (the first hour's samples left out); (heap samples, the watch, the first message of the
    walk, device). A reset ends the walk."""
    config = config_text(broker, NAME, **PROFILES[profile].get("keys", {}))
    dev = device(profile, config=config, files=files, start=False)
    worlds.attach(dev, worlds.world(profile, config))
    w = mqtt_watch(broker, (f"stat/{NAME}/#",))
    dev.start()
    w.wait_for(f"stat/{NAME}/Uptime", device=dev, timeout=120)  # the real clock: it boots, joins
    first = w.mark()
    heap = []
    for _ in range(hours * per_hour):
        dev.advance(HOUR_MS // per_hour, timeout=WALK_S)
        check_no_reset(dev)
        heap.append(dev.call("state")["mem_alloc"])
    return heap[per_hour:], w, first, dev


def seen(w, first, topic):
    return [p.decode() for t, p, _ in w.messages[first:] if t == f"stat/{NAME}/{topic}"]


def check_no_reset(dev):
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0], dev.output()[-3000:]


def check_publications(w, first, profile, hours):
    # Uptime: one a device-minute, its value the minute: none missing, none repeated.
    up = [int(p) for p in seen(w, first, "Uptime")]
    assert up == list(range(up[0], up[0] + len(up))), up
    assert len(up) >= hours * 60 - 1, (len(up), hours * 60)
    assert len(seen(w, first, "Health")) >= hours * 3600 // (HEALTH_S + 60)
    for topic in PROFILES[profile].get("every_minute", ()):
        assert len(seen(w, first, topic)) >= hours * 60 - 1, topic


def check_heap(heap, per_hour=1):
    trend = slope_per_day(heap) / per_hour
    assert trend <= LEAK_LIMIT, f"heap grows {trend:.0f} bytes a day: {heap}"


@walks
@pytest.mark.timeout(600 + HOURS * WALK_S)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_full_cadence_soak(device, broker, mqtt_watch, profile):
    heap, w, first, dev = soak(device, broker, mqtt_watch, profile, HOURS)
    check_no_reset(dev)
    check_publications(w, first, profile, HOURS)
    check_heap(heap)


@pytest.mark.timeout(600 + LEAK_HOURS * WALK_S)
def test_a_firmware_that_leaks_16_bytes_a_publish_fails_the_soak(device, broker, mqtt_watch):
    # Two device-hours sampled every 10 minutes: about 8 publications a minute, 7.7 KB an
    # hour kept; nothing else is wrong with it.
    heap, w, first, dev = soak(device, broker, mqtt_watch, "netcheck", LEAK_HOURS,
                               files={"boot.py": LEAKY_BOOT}, per_hour=6)
    check_no_reset(dev)
    check_publications(w, first, "netcheck", LEAK_HOURS)
    with pytest.raises(AssertionError, match="heap grows"):
        check_heap(heap, per_hour=6)

