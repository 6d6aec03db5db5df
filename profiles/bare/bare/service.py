# The appliance's own part, started by app.run("bare.service") unless in safe mode. A new
# profile starts from a copy of profiles/bare: declare config keys and MQTT topics at
# import time (one line each), start sensors and timers in setup(). See docs/core.md.


from epx import mqtt


def setup():
    mqtt.describe("epx appliance")
