# Test firmware for OTA end to end: the core and a tiny appliance. Tests build it as several
# versions of one profile (EPX_VERSION): a version ending in -crash crashes at boot, one
# ending in -unhealthy never reaches the broker, one ending in -hang trips the watchdog.
include("../../modules/epx/manifest.py")
module("main.py", base_path="ota_app")
package("otaapp", base_path="ota_app")
