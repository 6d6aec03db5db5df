# relay: timed relays on GPIO (TurnOnWithTimeout), SSD1306 display; state and time left
# survive reboots.
include("../modules/epx/manifest.py")
include("../modules/third/manifest.py", drivers=("ssd1306",))
include("../profiles/relay/manifest.py")
