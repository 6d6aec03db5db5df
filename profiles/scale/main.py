from epx import app
from scale import safe

# A battery sensor: no WiFi association, no MQTT; it wakes, weighs, reports, sleeps.
app.run("scale.sensor", watchdog_grace_ms=1000, network=False,
        safe_setup=safe.setup)
