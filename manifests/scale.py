# scale: battery load-cell sensor (HX711) waking from deep sleep to report over ESP-NOW.
include("../modules/epx/manifest.py", netnow=True)
include("../modules/third/manifest.py", drivers=("hx711",))
include("../profiles/scale/manifest.py")
