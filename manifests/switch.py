# switch: light switch boards (GPIO, or 74HC165/595 chains), programmable inputs, outputs
# that keep their state through every reboot.
include("../modules/epx/manifest.py")
include("../modules/third/manifest.py", drivers=("shiftreg",))
include("../profiles/switch/manifest.py")
