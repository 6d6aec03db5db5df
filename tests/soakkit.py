"""The devices of the full-cadence soak (tests/test_soak.py, bench/bench_walk.py): each
profile's config.txt keys beside the network's; its chip models and pins are the demo
world of `epx sim` (epx.sim.worlds)."""

NAME = "soak"

# "quiet": publications ("<name> every <force s> s") the soak world leaves without a value
# (withdrawn: nothing to send), and why; every other declared one is held to its cadence.
PROFILES = {
    "netcheck": {},
    "energy": {"quiet": {f"{n} every 1800 s": "no time server in the soak's world: no local day"
                         for n in ("Today", "Yesterday")}},
    "h2o": {"keys": {"unit": "L", "capacity": 1000, "levelsensors": "20,40,60,80,100",
                     "flowpulserate": 4.8},
            "quiet": {"Flow every 5 s": "nothing flows in the soak's world: the rate is "
                                        "withdrawn, Flow's still value holds its 30 min"}},
    "weather": {},
    "switch": {"keys": {"driver": "Direct4"}},
    "relay": {},
    "scale_manager": {"keys": {"channel": 6, "pmk": "00112233445566778899aabbccddeeff",
                               "sensor": "24:0a:c4:65:43:21",
                               "sensor_lmk": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
                      "quiet": {f"{n} every 1800 s": "no scale sensor in the soak's world: "
                                "nothing weighed, no reading to send"
                                for n in ("Weight", "Malfunction", "Battery", "LastSeen")}},
}
