"""Upgrades in a real Home Assistant Core (make test-ha; skipped without $EPX_HA_PYTHON):
the six appliances run an earlier commit's firmware (5be0623, 41c0f67: built from those
commits, tests/oldfw.py) until Home Assistant has all their entities, then this firmware on
the same simulated chips; after a Home Assistant restart its registries must hold one
device per appliance, no entity the new firmware does not announce (an orphan), and no
`_2` entity id. $EPX_HA_TARGET=<commit> upgrades to that commit's firmware instead of this
one: the checks then show what that firmware leaves behind."""

import os
import re

import pytest

import hakit
import oldfw
from discovery_history import ANNOUNCED
from epx.sim.run import Demo, default_config

pytestmark = [pytest.mark.skipif(hakit.python() is None,
                                 reason="no Home Assistant venv ($EPX_HA_PYTHON; make test-ha)"),
              pytest.mark.timeout(3600)]

PROFILES = ("h2o", "energy", "weather", "switch", "relay", "scale_manager")
NAMES = ("h2o", "energy", "weather", "switch", "relay", "scale")
TARGET = os.environ.get("EPX_HA_TARGET")


def registry(ha):
    """(mqtt devices, mqtt entities) as Home Assistant's registries hold them."""
    entry = next(e["entry_id"] for e in ha.call("GET", "/api/config/config_entries/entry")[1]
                 if e["domain"] == "mqtt")
    devices = [d for d in ha.ws({"type": "config/device_registry/list"})
               if entry in d["config_entries"]]
    entities = [e for e in ha.ws({"type": "config/entity_registry/list"}) if e["platform"] == "mqtt"]
    return devices, entities


def ghosts(ha, announced):
    """What a user would find wrong: device names more than once, registry entries whose
    unique_id the running firmware does not announce (orphans), `_2` ids, entities
    restored from the registry without a live config (unavailable, `restored`)."""
    devices, entities = registry(ha)
    names = [d["name_by_user"] or d["name"] for d in devices]
    states = ha.states()
    return {
        "duplicate devices": sorted({n for n in names if names.count(n) > 1}),
        "orphans": sorted(e["entity_id"] for e in entities if e["unique_id"] not in announced),
        "_2 ids": sorted(e["entity_id"] for e in entities if re.search(r"_\d+$", e["entity_id"])
                         and not re.search(r"_(output|channel|button)_\d+$", e["entity_id"])),
        "restored": sorted(e for e, s in states.items() if s["attributes"].get("restored")),
    }


def unique_ids(watch):
    """The unique_ids of the last non-empty config on each discovery topic of the devices."""
    import json

    last = {}
    for t, p, _ in list(watch.messages):
        parts = t.split("/")
        if len(parts) == 5 and parts[0] == "homeassistant" and parts[2] in NAMES:
            last[t] = json.loads(p)["unique_id"] if p else None
    return {u for u in last.values() if u}


@pytest.mark.parametrize("old", ["5be0623", "41c0f67"])
def test_an_upgrade_leaves_no_ghosts(old, tmp_path):
    from brokerkit import MqttWatch
    from epx.sim.net import Broker

    oldfw.build(old, PROFILES)
    if TARGET:
        oldfw.build(TARGET, PROFILES)
    with Broker() as broker:
        ha = hakit.HomeAssistant(hakit.python(), tmp_path / "config", broker).start()
        watch = MqttWatch(broker.host, broker.port, ("homeassistant/#",))
        running = []
        try:
            folders = {p: str(tmp_path / p) for p in PROFILES}
            running = [oldfw.OldDevice(old, p, folders[p], broker) for p in PROFILES]
            want = sum(len(v) for v in ANNOUNCED[old].values())

            def old_entities():
                return len(registry(ha)[1]) >= want or None

            ha.wait(old_entities, 300, f"the {want} entities of {old}'s firmware")
            for d in running:
                d.stop()
            running = []
            mark = watch.mark()
            if TARGET:
                running = [oldfw.OldDevice(TARGET, p, folders[p], broker) for p in PROFILES]
            else:
                demos = [Demo(p, default_config(p), folders[p], broker.host, broker.port,
                              lambda text: None) for p in PROFILES]
                for d in demos:
                    d.start(speed=1)
                running = demos
            for n in NAMES:  # every device has announced itself again (Refresh comes last)
                watch.wait_for(f"homeassistant/button/{n}/Refresh/config", lambda p: p,
                               since=mark, timeout=300)
            announced = unique_ids(watch)
            try:  # Home Assistant took the new firmware's entities (5be0623's it does not:
                # it keeps 41c0f67's unique_ids until a restart, then makes `_2` ids)
                ha.wait(lambda: {e["unique_id"] for e in registry(ha)[1]} >= announced or None,
                        120, "every announced entity registered")
            except AssertionError as e:
                kept = sorted(announced - {x["unique_id"] for x in registry(ha)[1]})
                raise AssertionError(f"{e}; not registered: {kept[:5]} ({len(kept)})") from None
            ha.restart()

            def live():  # every announced entity back from its config, not from the registry
                ids = {e["entity_id"] for e in registry(ha)[1] if e["unique_id"] in announced}
                states = ha.states()
                return len(ids) == len(announced) and all(
                    e in states and not states[e]["attributes"].get("restored") for e in ids)

            ha.wait(live, 120, "every announced entity set up after the restart")
            found = ghosts(ha, announced)
            assert found == {"duplicate devices": [], "orphans": [], "_2 ids": [], "restored": []}
            devices, _ = registry(ha)
            assert sorted(d["name"] for d in devices) == sorted(NAMES)
        finally:
            for d in running:
                d.stop()
            watch.close()
            ha.stop()
