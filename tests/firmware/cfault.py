# Test firmware for the core's crash path, watchdog and safe mode: the core with a small
# appliance whose config key `fault` picks how it fails.
include("../../modules/epx/manifest.py")
module("boot.py", base_path="../../profiles/bare")
module("main.py", base_path="cfault")
package("cfault", base_path="cfault")
