# The OTA test appliance. Its behaviour follows the version it was built as, so one source
# gives the healthy, the unhealthy and the crashing firmware of the same profile.
from epx import mqtt
from epx.version import VERSION


def setup():
    if VERSION.endswith("-crash"):
        raise RuntimeError("otaapp %s crashes at boot" % VERSION)
    if VERSION.endswith("-unhealthy"):
        mqtt.PORT.value = 1  # a broker port where nothing listens: never healthy
    mqtt.pub("Version", lambda: VERSION, "%s", check_s=60, force_s=600, retain=True)
    print("otaapp ready", VERSION)
