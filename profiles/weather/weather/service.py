# The weather appliance: the station measured every 5 s from 15 s after boot, its MQTT
# face and the optional display.
from machine import I2C, Pin

from epx import log, loop, mqtt, net, pins
from ssd1306 import SSD1306
from weather.display import Page
from weather.station import Station, CONVERSION_MS

_OLED_ADDR = const(0x3C)
_START_MS = const(15000)
_PERIOD_MS = const(5000)

SDA = pins.key("sda", pins.OUT, doc="I2C data pin|GPIO||The sensors' and display's SDA")
SCL = pins.key("scl", pins.OUT, doc="I2C clock pin|GPIO||The sensors' and display's SCL")

station = None
page = None
_error = None


def setup():
    global station, page
    i2c = I2C(0, scl=Pin(SCL.value), sda=Pin(SDA.value), freq=100000)
    mqtt.describe("Weather station")
    station = Station(i2c)
    if station.error:
        log.warn("weather: " + station.error)
    page = Page(SSD1306(i2c, addr=_OLED_ADDR), station, net.ip,
                lambda: "up" if mqtt.connected else "down")
    loop.later(max(0, _START_MS - loop.uptime_ms()), lambda: loop.every(_PERIOD_MS, _measure))
    mqtt.pub("Temperature", lambda: station.temperature, "%.1f", check_s=60, force_s=1800,
             ha=("temperature", "°C"))
    mqtt.pub("Humidity", lambda: station.humidity, "%.1f", check_s=60, force_s=1800,
             ha=("humidity", "%"))
    mqtt.pub("Pressure", lambda: station.pressure, "%.1f", check_s=60, force_s=1800,
             ha=("atmospheric_pressure", "hPa"))
    mqtt.pub("Malfunction", lambda: station.malfunction, "%d", check_s=5, force_s=1800,
             ha=mqtt.MALFUNCTION)


def _measure():
    station.trigger()
    loop.later(CONVERSION_MS, _collect)


def _collect():
    global _error
    station.collect()
    if station.error != _error:
        _error = station.error
        if _error:
            log.warn("weather: " + _error)
    page.refresh()
