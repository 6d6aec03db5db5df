"""A fleet: 100 simulated devices against one mosquitto on this machine (`make test-fleet`;
left out of `make test`). 80 appliances of every stand-alone profile in turn, in their demo
worlds, at real time, and 20 OTA test devices (tests/firmware/ota_app, a fast clock).

The broker is restarted 10 times: every device comes back with its availability, states and
discovery, none resets, and the appliances' reconnections, counted on the broker's side, are
spread by the backoff's jitter. Then `epx ota` rolls a new image over the 20: an unhealthy
canary rolls back and stops the rollout; a good image reaches all 20. Last, 20 appliances on
two bridged mosquittos (a cluster's nodes) move to the second when the first dies.

EPX_FLEET=<n> runs n appliances instead of 80 (development)."""

import math
import os
from types import SimpleNamespace

import pytest

from epx import ota
from epx.sim import net
from epx.sim.fleet import PROFILES, Fleet, peak_per_second

from brokerkit import MqttWatch
from otakit import image

pytestmark = pytest.mark.fleet

APPLIANCES = int(os.environ.get("EPX_FLEET", 80))
OTA_DEVICES = 20
OTA_KEY = "k3y-for-the-fleet"
# Device seconds per real second: boots and health checks pass quickly. The transfer's own
# timeout (ota_timeout_s) is set to its most: 19 downloads at once from this host are slow.
OTA_SCALE = 20
OTA_CONFIG = "ssid epx-sim\npassword None\n"
RESTARTS = 10
# epx.mqtt's backoff: 0.5 s doubling, each delay up to 50 % late (modules/epx/mqtt.py).
FIRST_RETRY_S = 0.5
FAILED_ROUNDS = 3  # the broker comes back once every appliance failed this many attempts


def jitter_bound(n):
    """The most of n reconnections the backoff lets into any one second, once the broker
    comes back after every device failed FAILED_ROUNDS attempts.

    A device's attempt k after a loss is at sum(d_i * (1 + u_i / 2) for i < k), d_i = 0.5 s
    * 2**i, u_i uniform in 0..1 (loop.Timer's jitter, randint(0, d_i / 2)). Attempt
    FAILED_ROUNDS + 1 is the first the broker answers (the earliest of them comes after the
    latest failure: 3.5 + 4 s > 3.5 + 1.75 s). Its time's density is a convolution that
    includes the uniform of width d_3 / 2 = 2 s, so it is at most 1/2 per second: in any one
    second n/2 devices are expected. The sliding window's maximum and the binomial's spread
    (sd sqrt(n)/2) add 4 sd."""
    widest = FIRST_RETRY_S * 2 ** FAILED_ROUNDS / 2
    return n / widest + 4 * math.sqrt(n) / 2


def retry_line(rounds):
    return r"mqtt: connect: .*; retry in %d ms" % (FIRST_RETRY_S * 1000 * 2 ** rounds)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, firmware):
    folder = tmp_path_factory.mktemp("fleet")
    with net.Broker() as broker:
        appliances = Fleet(str(folder / "app"), PROFILES, APPLIANCES, broker,
                           images={p: firmware(p).image for p in PROFILES})
        updatable = Fleet(str(folder / "ota"), ["ota_app"], OTA_DEVICES, broker,
                          images={"ota_app": image("1.0")}, config=OTA_CONFIG, ota_key=OTA_KEY,
                          ota_healthy_s=5, ota_verify_s=60, ota_timeout_s=600, homeassistant=0,
                          mqttkeepalive=600, watchdog=0)
        for dev in updatable:
            dev.world["clock_scale"] = OTA_SCALE
        world = SimpleNamespace(broker=broker, appliances=appliances, updatable=updatable,
                                watch=MqttWatch(broker.host, broker.port))
        try:
            appliances.start()
            updatable.start()
            online(world.watch, [*appliances, *updatable], timeout=120 + APPLIANCES)
            yield world
        finally:
            world.watch.close()
            appliances.stop()
            updatable.stop()


def online(watch, devices, timeout, since=0, topics=None):
    """Until `topics` (default: every device's stat/<n>/LWT) have a message since `since`;
    on timeout the silent devices' state and last console lines."""
    topics = topics or [f"stat/{d.name}/LWT" for d in devices]
    try:
        watch.wait_all(topics, since, timeout)
    except AssertionError as e:
        seen = {t for t, _, _ in watch.messages[since:]}
        names = {t.split("/")[2 if t.startswith("homeassistant/") else 1]
                 for t in topics if t not in seen}
        raise AssertionError(str(e) + "".join(
            f"\n{d.name}: boots {len(d.boots)}, ended {d.ended}, pid {d.pid}:\n  " +
            "\n  ".join(d.output().splitlines()[-8:]) for d in devices if d.name in names))


def back(appliances, updatable):
    """The topics each device sends again on a new connection: availability everywhere,
    and an appliance's states and discovery (Uptime: every profile has it)."""
    topics = [f"stat/{d.name}/LWT" for d in updatable]
    for d in appliances:
        topics += [f"stat/{d.name}/LWT", f"stat/{d.name}/Uptime",
                   f"homeassistant/sensor/{d.name}/Uptime/config"]
    return topics


def test_jitter_bound_catches_a_burst():
    # The check below on a fleet without jitter: every device at the same backoff step,
    # its attempts only spread by the host's scheduling (here 300 ms).
    n = 80
    burst = [i * 0.3 / n for i in range(n)]
    assert peak_per_second(burst) == n > jitter_bound(n)
    spread = [7.5 + i * 3.75 / n for i in range(n)]  # as wide as the jitter makes it
    assert peak_per_second(spread) <= jitter_bound(n)


def test_broker_restarted_ten_times(fleet):
    broker, appliances, updatable = fleet.broker, fleet.appliances, fleet.updatable
    names = {d.name for d in appliances}
    peaks = []
    for restart in range(RESTARTS):
        marks = {d.name: d.console_mark() for d in appliances}
        broker.down()
        for d in appliances:  # each has failed FAILED_ROUNDS attempts at the dead broker
            d.wait_console(retry_line(FAILED_ROUNDS), since=marks[d.name], timeout=60)
        since = len(broker.connected)
        broker.up()
        fresh = MqttWatch(broker.host, broker.port)  # before any appliance can be back
        fleet.watch.close()
        fleet.watch = fresh
        online(fresh, [*appliances, *updatable], 120, topics=back(appliances, updatable))
        connections = broker.connected[since:]
        order = [c.rsplit("-", 1)[0] in names or c.startswith("epx-watch") for _, c in connections]
        assert connections[order.index(True)][1].startswith("epx-watch"), \
            "an appliance was back before the watch listened"
        times = [t for t, c in connections if c.rsplit("-", 1)[0] in names]
        assert len(times) == len(names), f"restart {restart}: {len(times)} reconnections"
        peaks.append(peak_per_second(times))
        assert appliances.resets() == {} and updatable.resets() == {}
    print(f"\nreconnections of {len(names)} appliances, most in one second, per restart: "
          f"{peaks} (bound {jitter_bound(len(names)):.0f})")
    assert max(peaks) <= jitter_bound(len(names))


def test_ota_rollout_stops_at_an_unhealthy_canary(fleet):
    broker, appliances, updatable = fleet.broker, fleet.appliances, fleet.updatable
    watch = fleet.watch
    targets = [ota.Target(d.name, OTA_KEY, broker.host, broker.port, None, None) for d in updatable]
    boots = {d.name: len(d.boots) for d in updatable}
    mark = watch.mark()
    results = ota.rollout(targets, ota.load_image(image("2.0-unhealthy")), serve_host="127.0.0.1",
                          comeback_timeout=120)
    canary = updatable.devices[0]
    assert [(r.name, r.outcome, r.version) for r in results] == \
        [(canary.name, "rolled back", "ota_app-1.0")]
    assert "not healthy within 60 s" in canary.output()
    for d in updatable.devices[1:]:  # untouched: never asked, never rebooted
        assert len(d.boots) == boots[d.name]
        assert not [t for t, _, _ in watch.messages[mark:] if t == f"cmnd/{d.name}/OTA"]

    results = ota.rollout(targets, ota.load_image(image("2.0")), serve_host="127.0.0.1",
                          comeback_timeout=120)
    assert [(r.name, r.outcome, r.version) for r in results] == \
        [(d.name, "kept", "ota_app-2.0") for d in updatable], [r for r in results if r.error]
    for d in updatable:
        assert d.boots[-1]["version"] == "ota_app-2.0"
    assert appliances.resets() == {}


CLUSTER_APPLIANCES = min(APPLIANCES, 20)


def test_a_dead_node_moves_the_fleet_to_the_next(tmp_path, firmware):
    # Two bridged mosquittos stand for a cluster; every appliance lists both, a first.
    with net.Broker() as a, net.Broker(bridge=a) as b:
        fleet = Fleet(str(tmp_path), PROFILES, CLUSTER_APPLIANCES, [a, b],
                      images={p: firmware(p).image for p in PROFILES})
        on_b = MqttWatch(b.host, b.port)
        try:
            fleet.start()
            online(on_b, fleet.devices, timeout=120)  # on a, seen on b over the bridge
            for d in fleet:
                d.wait_console(r"mqtt: up, 127\.0\.0\.1:%d" % a.port)
            marks = {d.name: d.console_mark() for d in fleet}
            since, m = len(b.connected), on_b.mark()
            a.down()
            # Each goes to b at its first retry (0.5-0.75 s) and says it all again there.
            online(on_b, fleet.devices, 60, since=m, topics=back(fleet.devices, []))
            for d in fleet:
                d.wait_console(r"mqtt: lost: .*; retry in 500 ms at 127\.0\.0\.1:%d" % b.port,
                               since=marks[d.name])
                d.wait_console(r"mqtt: up, 127\.0\.0\.1:%d" % b.port, since=marks[d.name])
            assert fleet.resets() == {}
            names = {d.name for d in fleet}
            times = [t for t, c in b.connected[since:] if c.rsplit("-", 1)[0] in names]
            assert len(times) == len(names)
            print(f"\n{len(names)} appliances moved to the second node, most in one second: "
                  f"{peak_per_second(times)}, all within {max(times) - min(times):.2f} s")
            fresh = MqttWatch(b.host, b.port)  # b keeps what they left retained there
            try:
                online(fresh, fleet.devices, 30,
                       topics=[f"homeassistant/sensor/{d.name}/Uptime/config" for d in fleet])
            finally:
                fresh.close()
        finally:
            on_b.close()
            fleet.stop()
