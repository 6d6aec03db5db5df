# Board facts product code reads instead of hard-coding pins.
NAME = "EPX_ESP32"
LAN = None
