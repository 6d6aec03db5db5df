# What the ESP32 image freezes besides the profile (and the build's board.py and version,
# added by tools/epx/build.py): the port's boot path that mounts the vfs partition,
# ESP-NOW's Python half, asyncio. Not the stock networking bundle, nor micropython-lib.
module("_boot.py", base_path="$(PORT_DIR)/modules")
module("flashbdev.py", base_path="$(PORT_DIR)/modules")
module("inisetup.py", base_path="$(PORT_DIR)/modules")
module("espnow.py", base_path="$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
