# relay: timed relays on GPIO (TurnOnWithTimeout); state and time left survive reboots.
include("../modules/epx/manifest.py")
include("../profiles/relay/manifest.py")
