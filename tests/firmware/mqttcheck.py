# Test firmware for the MQTT client and the epx networking modules.
include("../../modules/uumqtt/manifest.py")
