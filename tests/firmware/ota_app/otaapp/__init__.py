# The OTA test appliance. Its behaviour follows the version it was built as, so one source
# gives the healthy and the broken firmwares of the same profile: -crash raises at boot,
# -unhealthy never reaches the broker, -hang stops the loop (the watchdog resets).
from epx import loop, mqtt
from epx.version import VERSION


def _hang():
    while True:
        pass


def setup():
    if VERSION.endswith("-crash"):
        raise RuntimeError("otaapp %s crashes at boot" % VERSION)
    if VERSION.endswith("-unhealthy"):
        # every node's port where nothing listens: never healthy
        mqtt.BROKER.value = [(host, 1) for host, _ in mqtt.BROKER.value]
    if VERSION.endswith("-hang"):
        loop.later(2000, _hang)
    mqtt.pub("Version", lambda: VERSION, "%s", check_s=60, force_s=600, retain=True)
    print("otaapp ready", VERSION)
