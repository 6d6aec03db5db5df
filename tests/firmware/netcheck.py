# Test firmware for epx.net, epx.mqtt and diagnostics: the core with a small appliance
# (netapp) that publishes a settable value and takes commands.
include("../../modules/epx/manifest.py")
module("main.py", base_path="netcheck")
package("netapp", base_path="netcheck")
