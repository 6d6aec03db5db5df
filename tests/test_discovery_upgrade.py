"""The compatibility promise without Home Assistant: every discovery topic an earlier
firmware announced (tests/discovery_history.py) is announced again by this firmware, under
the same topic, or cleared (an empty retained config) by a retire() line, so no entity is
left orphaned in Home Assistant after an upgrade. Each profile in its demo world against a
real mosquitto; make test-ha upgrades through Home Assistant itself."""

import pytest

from discovery_history import ANNOUNCED
from epx.sim.run import Demo, default_config, worlds

PROFILES = sorted(ANNOUNCED["5be0623"])


def orphans(old, announced, cleared):
    """Topics an earlier firmware announced that this one neither announces nor clears."""
    return sorted(set(old) - announced - cleared)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_earlier_topic_announced_or_cleared(profile, broker, mqtt_watch, tmp_path):
    name = worlds.config_value(default_config(profile), "mqttname")
    w = mqtt_watch(broker, (f"homeassistant/+/{name}/+/config",))
    demo = Demo(profile, default_config(profile), tmp_path / profile, broker.host, broker.port,
                lambda text: None)
    demo.start(speed=4)
    try:
        w.wait_for(f"homeassistant/button/{name}/Refresh/config", lambda p: p, timeout=120)
    finally:
        demo.stop()
    announced, cleared = set(), set()
    for t, p, _ in w.messages:
        path = "/".join(t.split("/")[i] for i in (1, 3))
        (announced if p else cleared).add(path)
    for commit, profiles in ANNOUNCED.items():
        assert orphans(profiles.get(profile, ()), announced, cleared) == [], commit
    retired = cleared - announced
    if profile == "h2o":  # its Malfunction was a sensor (41c0f67), now a binary_sensor
        assert retired == {"sensor/Malfunction"}
        assert orphans(ANNOUNCED["41c0f67"]["h2o"], announced, set()) == ["sensor/Malfunction"]
    else:
        assert retired == set()
