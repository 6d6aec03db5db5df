# Unit-test firmware of the switch and relay profiles: their packages and the shift-register
# driver, with the core's nvram (tests call them through -c).
include("../../modules/third/manifest.py", drivers=("shiftreg",))
package("epx", files=["nvram.py"], base_path="../../modules")
package("switch", base_path="../../profiles/switch")
package("relay", files=["relays.py"], base_path="../../profiles/relay")
