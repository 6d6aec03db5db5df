# scale_manager: receives the scale sensor's ESP-NOW readings on the AP's channel and
# publishes them over MQTT.
include("../modules/epx/manifest.py", netnow=True)
include("../profiles/scale_manager/manifest.py")
