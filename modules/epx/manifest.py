# The epx core. Profiles that talk ESP-NOW add netnow=True.
options.defaults(netnow=False)
metadata(description="epx: reliable appliances on MicroPython", version="0.1.0")
package("epx", files=[
    "__init__.py",
    "ap.py",
    "app.py",
    "appimage.py",
    "config.py",
    "confcmd.py",
    "confstore.py",
    "crash.py",
    "diag.py",
    "dnsd.py",
    "health.py",
    "hmac.py",
    "http.py",
    "improv.py",
    "log.py",
    "loop.py",
    "mqtt.py",
    "net.py",
    "nvram.py",
    "ota.py",
    "pins.py",
    "portal.py",
    "otawrite.py",
    "pulse.py",
    "radio.py",
    "replay.py",
    "sntp.py",
    "update.py",
    "watchdog.py",
], base_path="..")
include("../uumqtt/manifest.py")
if options.netnow:
    package("epx", files=["netnow.py"], base_path="..")
