"""A fleet of simulated appliances on one broker (or the nodes of a cluster): each device is
its profile's host firmware in its own process, in that profile's demo world, named
<profile>-<i>. Used by the fleet tests and bench/bench_fleet.py.

    with Fleet(folder, ["h2o", "relay"], 10, broker) as fleet:
        fleet.start()
"""

import os
import shutil

from . import worlds
from .device import Device
from .run import app_image, default_config, with_keys

# Profiles that stand alone in their demo world (scale_manager needs its ESP-NOW scale).
PROFILES = ("h2o", "energy", "weather", "switch", "relay", "bare")
# No NTP server answers there (port 9 is discard): the clock stays at its power-on time.
NO_NTP = "127.0.0.1:9"
# What MicroPython gets on an ESP32 without PSRAM, with room for the simulator's own modules.
HEAPSIZE = 160 * 1024


def mix(profiles, n):
    """n profile names, taking profiles in turn."""
    return [profiles[i % len(profiles)] for i in range(n)]


class Fleet:
    """n devices of `profiles` (in turn) under folder/<name>; `nodes`: the brokers (any
    objects with host and port) their mqttbroker lists, in order. Each config.txt is the
    profile's example (or `config`, a text) with `keys` set; images: {profile: app image}
    to run instead of building the profile's."""

    def __init__(self, folder, profiles, n, nodes, heapsize=HEAPSIZE, images=None, config=None,
                 **keys):
        if not isinstance(nodes, (list, tuple)):
            nodes = [nodes]
        self.folder = folder
        self.devices = []
        self.profile = {}  # name -> profile
        images = dict(images or {})
        for i, profile in enumerate(mix(profiles, n)):
            if profile not in images:
                images[profile] = app_image(profile)[1]
            name = f"{profile}-{i}"
            text = with_keys(config or default_config(profile), mqttname=name,
                               mqttbroker=",".join(f"{b.host}:{b.port}" for b in nodes),
                               ntpserver=NO_NTP, **keys)
            entry = worlds.world(profile, text)
            path = os.path.join(folder, name)
            shutil.rmtree(path, ignore_errors=True)
            dev = Device.create(path, images[profile], files={"config.txt": text}, name=name,
                                heapsize=heapsize, console_lines=400)
            dev.world["wifi"].update(worlds.access_point(text))
            worlds.attach(dev, entry)
            self.devices.append(dev)
            self.profile[name] = profile

    def __iter__(self):
        return iter(self.devices)

    def __len__(self):
        return len(self.devices)

    def start(self):
        for dev in self.devices:
            dev.start()
        return self

    def stop(self):
        for dev in self.devices:
            dev.stop()

    def pids(self):
        """The firmware processes running now."""
        return [dev.pid for dev in self.devices if dev.pid is not None]

    def resets(self):
        """{name: boots} of every device that booted more than once."""
        return {dev.name: len(dev.boots) for dev in self.devices if len(dev.boots) > 1}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def peak_per_second(times, window=1.0):
    """The most of `times` (seconds) within any `window` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best
