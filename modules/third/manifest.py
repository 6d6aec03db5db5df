# Device drivers, frozen by name: include("../modules/third/manifest.py", drivers=("mcp23017",)).
options.defaults(drivers=())
DRIVERS = {
    "mcp23017": ("mcp23017.py",),  # 16 inputs with pull-ups (h2o level switches)
    "ssd1306": ("ssd1306.py",),  # 128x64 OLED on I2C, through framebuf
    "shiftreg": ("shiftreg.py",),  # 74HC165/595 chains bit-banged in viper (switch dtwonder8)
}
for name in options.drivers:
    if name not in DRIVERS:
        raise ValueError("modules/third: no driver %r (known: %s)" % (name, ", ".join(sorted(DRIVERS))))
    for f in DRIVERS[name]:
        module(f)
