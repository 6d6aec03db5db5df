# Board facts product code reads instead of hard-coding pins.
NAME = "EPX_ESP32"
LAN = None
# GPIOs the board gives to something else, with what (epx.pins refuses them).
RESERVED = {}
# The default GPIO of each pin key (epx.pins): the original appliances' wiring.
PINS = {
    "sda": 21, "scl": 22,  # I2C0: h2o, relay, weather
    "flowpin": 14,  # h2o
    "relays": (25, 26, 27, 33),  # relay
    "uarttx": 17, "uartrx": 16,  # energy (UART2)
    "hx711_dout": 32, "hx711_sck": 33,  # scale
}
