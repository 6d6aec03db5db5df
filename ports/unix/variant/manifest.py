# What every host firmware freezes beside the profile: MicroPython's asyncio, the ESP32
# port's own Python modules (its _boot.py mounting the vfs partition, espnow.py), and the
# simulated ESP32 (ports/unix/modules: modules named like the ESP32 port's, which shadow
# the unix built-ins of the same name).
include("$(MPY_DIR)/extmod/asyncio")
for name in ("_boot.py", "flashbdev.py", "inisetup.py", "espnow.py"):
    module(name, base_path="$(MPY_DIR)/ports/esp32/modules")
freeze("../modules")
