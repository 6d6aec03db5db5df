# Unit-test firmware of the switch and relay profiles: their packages and the shift-register
# driver, without the epx core (tests call them through -c).
module("shiftreg.py", base_path="../../modules/third")
package("switch", files=["program.py", "inputs.py", "command.py", "boards.py"], base_path="../../profiles/switch")
