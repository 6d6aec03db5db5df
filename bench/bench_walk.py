"""Walking device time (docs/simulator.md, "Device time"): host seconds one device-hour of
a profile at full cadence costs (tests/test_soak.py's device and world, a local
mosquitto), with the net grace that ends once the peer is seen to have nothing to say
against the old fixed 200 ms grace (EPX_SIM_NET_GRACE=fixed), in the same run.

    python3 bench/bench_walk.py [profile ...] [--minutes N]"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from _common import image  # noqa: E402
from devconfig import config_text  # noqa: E402
from epx.sim import worlds  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from epx.sim.net import Broker  # noqa: E402
from soakkit import NAME, PROFILES  # noqa: E402


def host_s_per_device_hour(app, profile, broker, minutes, grace):
    config = config_text(broker, NAME, **PROFILES[profile].get("keys", {}))
    env = {"EPX_SIM_NET_GRACE": grace}
    with tempfile.TemporaryDirectory() as tmp:
        dev = Device.create(Path(tmp) / "dev", app, files={"config.txt": config}, env=env)
        worlds.attach(dev, worlds.world(profile, config))
        dev.start()
        try:
            dev.advance(120_000, timeout=600)  # boot, join, first publications
            t = time.perf_counter()
            dev.advance(minutes * 60_000, timeout=600 + minutes * 60)
            spent = time.perf_counter() - t
            assert len(dev.boots) == 1, dev.output()[-2000:]
        finally:
            dev.stop()
    return spent * 60 / minutes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", nargs="*", default=["netcheck", "energy", "switch"])
    ap.add_argument("--minutes", type=int, default=30)
    args = ap.parse_args()
    with Broker() as broker:
        for profile in args.profiles:
            app = image(profile)
            quiet = host_s_per_device_hour(app, profile, broker, args.minutes, "quiet")
            fixed = host_s_per_device_hour(app, profile, broker, args.minutes, "fixed")
            print(f"walk {profile}: {quiet:.1f} s a device-hour, fixed grace {fixed:.1f} s, "
                  f"ratio {fixed / quiet:.1f}")


if __name__ == "__main__":
    main()
