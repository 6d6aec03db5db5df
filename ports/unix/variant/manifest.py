# What every host firmware freezes beside the profile: MicroPython's asyncio and the
# simulated ESP32 (ports/unix/modules: modules named like the ESP32 port's, which shadow
# the unix built-ins of the same name).
include("$(MPY_DIR)/extmod/asyncio")
freeze("../modules")
