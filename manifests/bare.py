# bare: the epx core alone (network, MQTT, diagnostics and OTA); the template for a new appliance.
include("../modules/epx/manifest.py")
include("../profiles/bare/manifest.py")
