"""Device-hours on the broker at full cadence, each profile: every timer at its own period
(the clock walks from deadline to deadline, docs/simulator.md "Device time"), keepalive as
configured (the default), the watchdog on. The heap is sampled after gc.collect() three
times a device-hour; the run fails on an upward heap trend above 64 bytes a day (a
least-squares slope over each hour's median, the first hour left out), on a publication
missed (counted at the broker: every publication the firmware declared, at least once a
period of its cadence, and the Uptime minute of every device-minute, none repeated) and on
any reset. Before the walk, each profile's Home Assistant discovery is checked against what
Home Assistant must show (tests/haentities.py, shared with make test-ha). Firmwares broken
on purpose show each check failing: one that keeps 16 bytes of every publication, one that
drops an Uptime publication in 30 and every other Value, one that resets after 90 minutes.

The log ring (epx.log: the latest 32 lines) grows the heap until it is full, about ten
hours with an unreachable NTP server (a warning every 15 minutes): a bounded growth every
device has, not a leak. Before each sample the walk fills the ring with the same 32 lines
(an undecodable command, logged and dropped), so every sample holds it in the same state
and the trend is the rest of the heap. A ring that kept more than 32 lines would grow 32
lines a sample and fail the check.

The suite walks each profile 3 device-hours (switch 1): every publication and no reset;
the heap trend needs a day of samples (TREND_HOURS). `make test-soak` (EPX_SOAK_DAYS, 7 by
default; EPX_SOAK_HOURS for any other walk) walks them for days, in CI a job a profile, 30
device-days on the schedule (docs/decisions.md, "Soak at full cadence")."""

import json
import os
import re
import threading

import pytest

import haentities
from devconfig import config_text
from epx.sim import worlds
from epx.sim.device import DeviceReset
from soakkit import NAME, PROFILES

HOUR_MS = 3600 * 1000
# The suite's walks: 6 device-hours, switch 2 (it polls its inputs every 15 ms: a
# device-hour costs it ten times another profile's host time).
SUITE_HOURS = {"switch": 1}
WALK = int(os.environ.get("EPX_SOAK_HOURS") or 24 * int(os.environ.get("EPX_SOAK_DAYS") or 0))
TREND_HOURS = 24  # 64 bytes a day is one heap block (16 bytes) in 6 hours: a day at least
SAMPLES = 3  # heap samples a device-hour, their median the hour's figure
LEAK_LIMIT = 64  # bytes a day
WALK_S = 300  # real seconds a device-hour may take on the busiest host
RING = 32  # lines epx.log keeps
FILLER = b"\xff"  # not UTF-8: "mqtt: undecodable message ignored", one log line
FILLED = re.compile(r"\d+\.\d{3} W mqtt: undecodable message ignored$")

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

# One that drops every 30th Uptime publication and every other Value (netcheck's, unchanged:
# sent every 10 minutes) as if they were sent.
DROPPING_BOOT = """\
import uumqtt
_n = {"Uptime": 0, "Value": 0}
_publish = uumqtt.MQTTClient.publish
async def _dropping(self, topic, msg, retain=False, qos=0):
    name = (topic if isinstance(topic, str) else topic.decode()).split("/")[-1]
    if name in _n:
        _n[name] += 1
        if _n[name] % (30 if name == "Uptime" else 2) == 0:
            return None
    return await _publish(self, topic, msg, retain, qos)
uumqtt.MQTTClient.publish = _dropping
"""

# One that resets 90 device-minutes after boot.
RESETTING_BOOT = """\
import asyncio, machine
async def _reset():
    await asyncio.sleep(5400)
    machine.reset()
asyncio.create_task(_reset())
"""


def slope_per_day(samples):
    """Least-squares slope of hourly samples, in units a day."""
    n = len(samples)
    assert n >= 2, "a trend needs two hours past the first: walk 3 hours or more"
    mx = (n - 1) / 2
    my = sum(samples) / n
    sxx = sum((x - mx) ** 2 for x in range(n))
    sxy = sum((x - mx) * (y - my) for x, y in enumerate(samples))
    return sxy / sxx * 24


def hourly(samples, per_hour):
    """Each hour's median sample: a message being handled or a stale stack word holding
    garbage at one sample moves the figure of neither."""
    return [sorted(samples[i:i + per_hour])[per_hour // 2]
            for i in range(0, len(samples), per_hour)]


def test_slope_of_hourly_samples():
    assert slope_per_day([100 + 2 * h for h in range(10)]) == pytest.approx(48)
    assert slope_per_day([7] * 5) == 0
    assert hourly([5, 9, 5, 6, 6, 70], 3) == [5, 6]


class LogLines:
    """Counts the filler's log lines on the device's console."""

    def __init__(self):
        self.n = 0
        self.cv = threading.Condition()

    def __call__(self, dev, text):
        if FILLED.search(text):
            with self.cv:
                self.n += 1
                self.cv.notify_all()

    def wait(self, n, timeout=60):
        with self.cv:
            assert self.cv.wait_for(lambda: self.n >= n, timeout), f"{self.n} of {n} lines"


def fill_log_ring(dev, w, lines):
    want = lines.n + RING
    for _ in range(RING):
        w.publish(f"cmnd/{NAME}/OTA", FILLER, qos=1)
    lines.wait(want)


def soak(device, broker, mqtt_watch, profile, hours, files=None, per_hour=1):
    """Walk `hours` device-hours at full cadence, the heap sampled `per_hour` times an hour
    (the first hour's samples left out); (heap samples, the watch, the first message of the
    walk, device). A reset fails the walk."""
    config = config_text(broker, NAME, **PROFILES[profile].get("keys", {}))
    lines = LogLines()
    dev = device(profile, config=config, files=files, start=False, on_console=lines)
    worlds.attach(dev, worlds.world(profile, config))
    w = mqtt_watch(broker, (f"stat/{NAME}/#", f"homeassistant/+/{NAME}/+/config"))
    dev.start()
    w.wait_for(f"stat/{NAME}/Uptime", device=dev, timeout=120)  # the real clock: it boots, joins
    first = w.mark()
    # Discovery goes before any state: every config is on the broker before the first Uptime.
    if profile in haentities.PROFILES:
        check_discovery(w, profile)
    heap = []
    for _ in range(hours * per_hour):
        try:
            dev.call("clock.advance", ms=HOUR_MS // per_hour, timeout=WALK_S)
        except DeviceReset:
            raise AssertionError("reset: " + dev.output()[-3000:]) from None
        check_no_reset(dev)
        fill_log_ring(dev, w, lines)
        heap.append(dev.call("state")["mem_alloc"])
    # Everything published in the walk is at the broker once an answer sent after it is.
    m = w.mark()
    w.publish(f"cmnd/{NAME}/OTA", "getversion", qos=1)
    w.wait_for(f"stat/{NAME}/Log", since=m, device=dev, timeout=60)
    return heap[per_hour:], w, first, dev


def seen(w, first, topic):
    return [p.decode() for t, p, _ in w.messages[first:] if t == f"stat/{NAME}/{topic}"]


def check_no_reset(dev):
    assert len(dev.boots) == 1 and "exit" not in dev.boots[0], "reset: " + dev.output()[-3000:]


def check_discovery(w, profile):
    configs = {t: json.loads(p) if p else None for t, p, _ in w.messages
               if t.startswith("homeassistant/")}
    got = haentities.discovered(configs, NAME)
    want = haentities.expected(profile, NAME)
    assert {e: got.get(e) for e in want} == want
    assert haentities.measured_without_state_class(configs) == []


def period_ms(check_ms, force_ms):
    """The longest a publication with a value goes unsent: it is checked every check_ms and
    sent at the first check force_ms or more after it was last sent (just after a check)."""
    return check_ms * (force_ms // check_ms + 1)


def due(declared, hours, quiet=()):
    """Topic -> messages the walk must have had at least: one a period of its most frequent
    publication but the first (the walk starts right after boot: a value may not be known
    yet), those with no forced cadence (events) and `quiet` ones ("<name> every <s> s",
    withdrawn for a reason) left out."""
    out = {}
    for name, check_ms, force_ms in declared:
        if force_ms and f"{name} every {force_ms // 1000} s" not in quiet:
            n = hours * HOUR_MS // period_ms(check_ms, force_ms) - 1
            out[name] = max(out.get(name, 0), n)
    return out


def test_cadence_of_declared_publications():
    assert period_ms(60000, 1800000) == 1860000  # sent just after the check at 30 min: the next
    assert period_ms(60000, 1000) == 60000  # forced at every check
    assert due([["Flow", 10000, 5000], ["Flow", 10000, 1800000], ["Event", 60000, 0]], 6) == \
        {"Flow": 6 * 360 - 1}
    assert due([["Flow", 10000, 5000], ["Flow", 10000, 1800000]], 6, ("Flow every 5 s",)) == \
        {"Flow": 6 * 3600 // 1810 - 1}


def check_publications(w, first, profile, hours, dev):
    check_uptime(w, first, hours)
    check_cadence(w, first, profile, hours, dev)


def check_uptime(w, first, hours):
    # Uptime: one a device-minute, its value the minute: none missing, none repeated.
    up = [int(p) for p in seen(w, first, "Uptime")]
    assert up == list(range(up[0], up[0] + len(up))), f"Uptime missed or repeated: {up}"
    assert len(up) >= hours * 60 - 1, (len(up), hours * 60)


def check_cadence(w, first, profile, hours, dev):
    # Every publication the firmware declared, at its cadence.
    # The appliance ran, not safe mode's core alone.
    assert {json.loads(p)["safe"] for p in seen(w, first, "Health")} == {"OFF"}
    want = due(dev.call("mqtt.pubs"), hours, PROFILES[profile].get("quiet", {}))
    assert "Health" in want and "Uptime" in want, want
    short = {t: (len(seen(w, first, t)), n) for t, n in want.items() if len(seen(w, first, t)) < n}
    assert short == {}, f"publications missed (topic: seen, due): {short}"


def check_heap(heap, per_hour=1):
    hours = hourly(heap, per_hour)
    trend = slope_per_day(hours)
    assert trend <= LEAK_LIMIT, f"heap grows {trend:.0f} bytes a day: {hours}"


def hours(profile):
    return WALK or SUITE_HOURS.get(profile, 3)


@pytest.mark.parametrize("profile", [
    pytest.param(p, marks=pytest.mark.timeout(600 + hours(p) * WALK_S)) for p in PROFILES])
def test_full_cadence_soak(device, broker, mqtt_watch, profile):
    heap, w, first, dev = soak(device, broker, mqtt_watch, profile, hours(profile),
                               per_hour=SAMPLES)
    check_no_reset(dev)
    check_publications(w, first, profile, hours(profile), dev)
    if hours(profile) >= TREND_HOURS:
        check_heap(heap, per_hour=SAMPLES)


BROKEN_HOURS = 3


def broken_walk(device, broker, mqtt_watch, boot):
    """netcheck with a broken boot.py walked BROKEN_HOURS device-hours, as soak() returns."""
    return soak(device, broker, mqtt_watch, "netcheck", BROKEN_HOURS, files={"boot.py": boot},
                per_hour=SAMPLES)


@pytest.mark.timeout(600 + BROKEN_HOURS * WALK_S)
def test_a_firmware_that_leaks_16_bytes_a_publish_fails_the_soak(device, broker, mqtt_watch):
    # Three device-hours: about 8 publications a minute, 7.7 KB an hour kept; nothing else
    # is wrong with it.
    heap, w, first, dev = broken_walk(device, broker, mqtt_watch, LEAKY_BOOT)
    check_no_reset(dev)
    check_publications(w, first, "netcheck", BROKEN_HOURS, dev)
    with pytest.raises(AssertionError, match="heap grows"):
        check_heap(heap, per_hour=SAMPLES)


@pytest.mark.timeout(600 + BROKEN_HOURS * WALK_S)
def test_a_firmware_that_drops_a_publication_fails_the_soak(device, broker, mqtt_watch):
    # Three device-hours: six Uptime minutes and half the Values never sent, and no reset.
    # Each check fails on its own.
    heap, w, first, dev = broken_walk(device, broker, mqtt_watch, DROPPING_BOOT)
    check_no_reset(dev)
    with pytest.raises(AssertionError, match="Uptime missed"):
        check_uptime(w, first, BROKEN_HOURS)
    with pytest.raises(AssertionError, match=r"publications missed .*'Value'"):
        check_cadence(w, first, "netcheck", BROKEN_HOURS, dev)


@pytest.mark.timeout(600 + 2 * WALK_S)
def test_a_firmware_that_resets_fails_the_soak(device, broker, mqtt_watch):
    with pytest.raises(AssertionError, match="reset: "):
        soak(device, broker, mqtt_watch, "netcheck", 2, files={"boot.py": RESETTING_BOOT})
