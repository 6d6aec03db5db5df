include("../EPX_ESP32/manifest.py")
