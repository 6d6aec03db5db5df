# h2o: water tank level (MCP23017 float switches) and flow meter (pulses), SSD1306 display.
include("../modules/epx/manifest.py")
include("../modules/third/manifest.py", drivers=("mcp23017", "ssd1306"))
include("../profiles/h2o/manifest.py")
