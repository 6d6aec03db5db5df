# Unit-test firmware of the switch and relay profiles: their packages and the shift-register
# driver, with the core's nvram (tests call them through -c).
module("shiftreg.py", base_path="../../modules/third")
package("epx", files=["nvram.py"], base_path="../../modules")
package("switch", base_path="../../profiles/switch")
package("relay", files=["relays.py"], base_path="../../profiles/relay")
