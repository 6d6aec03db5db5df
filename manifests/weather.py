# weather: HDC1080 (temperature, humidity) and BME280 (pressure) on I2C0, optional SSD1306.
include("../modules/epx/manifest.py")
include("../modules/third/manifest.py", drivers=("hdc1080", "bme280", "ssd1306"))
include("../profiles/weather/manifest.py")
