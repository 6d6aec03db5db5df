# Device drivers, frozen by name: include("../modules/third/manifest.py", drivers=("mcp23017",)).
options.defaults(drivers=())
DRIVERS = {
    "mcp23017": ("mcp23017.py",),  # 16 inputs with pull-ups (h2o level switches)
    "ssd1306": ("ssd1306.py",),  # 128x64 OLED on I2C, through framebuf
    "shiftreg": ("gpioregs.py", "shiftreg.py"),  # 74HC165/595 chains bit-banged in viper (switch dtwonder8)
    "pzem": ("pzem.py",),  # PZEM-004T v3 mains meter, Modbus-RTU on a UART (energy)
    "hdc1080": ("hdc1080.py",),  # temperature and humidity on I2C (weather)
    "bme280": ("bme280.py",),  # pressure, temperature, humidity on I2C (weather)
    "hx711": ("gpioregs.py", "hx711.py"),  # load-cell ADC bit-banged in viper (scale)
}
frozen = set()
for name in options.drivers:
    if name not in DRIVERS:
        raise ValueError("modules/third: no driver %r (known: %s)" % (name, ", ".join(sorted(DRIVERS))))
    for f in DRIVERS[name]:
        if f not in frozen:  # shared by several drivers
            frozen.add(f)
            module(f)
