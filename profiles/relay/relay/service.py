# The relay appliance: relays from config, TurnOnWithTimeout over MQTT, state published.
from machine import I2C, Pin
from time import ticks_ms

from epx import config, log, loop, mqtt, net, pins
from epx.nvram import NVRAM
from relay.display import Page
from relay.relays import Relays
from ssd1306 import SSD1306
from switch import keep

def _ints(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError("%r is not a comma-separated list of integers" % text)
    return values


def _maxima(text):
    values = _ints(text)
    for v in values:
        if not 1 <= v <= 0x1FFFFF:
            raise ValueError("maximum %d s out of range 1..%d" % (v, 0x1FFFFF))
    return values


PINS = pins.keys("relays", pins.HELD, doc="Relay pins|GPIO||Comma separated, active low")
MAX_S = config.key("maxon", _maxima, None, "Longest on-time|s|600,86400|Each relay's (one value: all); empty: 600 s, the others a day")
SDA = pins.key("sda", pins.OUT, doc="I2C data pin|GPIO||The display's SDA")
SCL = pins.key("scl", pins.OUT, doc="I2C clock pin|GPIO||The display's SCL")

_CHECK_S = const(1)
_FORCE_S = const(1800)
_OLED_ADDR = const(0x3C)
_DISPLAY_MS = const(1000)

relays = None
_timer = None
_states = []
_on_s = []  # per relay: how long "ON" turns it on (s), set from Home Assistant, kept in NVS
_nv = None


def setup():
    global relays, _timer, _nv
    mqtt.describe("Timed relay board")
    pins = PINS.value
    max_s = MAX_S.value or (600,) + (86400,) * (len(pins) - 1)
    if len(max_s) not in (1, len(pins)):
        log.warn("config: maxon has %d values for %d relays: the last one serves the rest"
                 % (len(max_s), len(pins)))
    max_s = [max_s[min(i, len(max_s) - 1)] for i in range(len(pins))]
    nv = _nv = NVRAM("relay")
    nv.set_bytes("pins", bytes(pins))  # for safe mode (relay.safe)
    state = keep.Kept(nv, "relay", len(pins))
    left = keep.Kept(nv, "relayt", len(pins), "t")
    state.load()
    left.load()
    relays = Relays(pins, max_s, state, left, _changed)
    now = ticks_ms()
    relays.start(now)
    for i in range(len(pins)):
        _declare(i, max_s[i])
    _timer = loop.Timer(_tick)
    _tick()
    i2c = I2C(0, scl=Pin(SCL.value), sda=Pin(SDA.value), freq=400000)
    page = Page(SSD1306(i2c, addr=_OLED_ADDR), relays, net.ip,
                lambda: "up" if mqtt.connected else "down")
    loop.every(_DISPLAY_MS, page.refresh)
    log.info("relay: %d relays, on: %s, restored from %s" % (
        len(pins), [i for i in range(len(pins)) if relays.is_on(i)],
        "RTC memory" if state.from_rtc else "NVS"))


def _declare(i, max_s):
    command = mqtt.topic("cmnd", "%d/TurnOnWithTimeout" % i)
    _on_s.append(min(_nv.get_int("on%d" % i, max_s), max_s))
    _states.append(mqtt.pub("%d/State" % i, lambda: 1 if relays.is_on(i) else 0, "%d",
                            check_s=_CHECK_S, force_s=_FORCE_S,
                            ha={"component": "switch", "command_topic": command,
                                "name": "Channel %d" % i, "payload_on": "ON", "payload_off": "0",
                                "state_on": "1", "state_off": "0"}))
    mqtt.sub("%d/TurnOnWithTimeout" % i, lambda text: _command(i, text))
    on_time = mqtt.pub("%d/OnTime" % i, lambda: _on_s[i], "%d", check_s=3600, force_s=_FORCE_S,
                       ha={"component": "number", "name": "Channel %d on time" % i,
                           "command_topic": mqtt.topic("cmnd", "%d/OnTime" % i),
                           "min": 1, "max": max_s, "step": 1, "mode": "box",
                           "unit_of_measurement": "s", "entity_category": "config"})
    mqtt.sub("%d/OnTime" % i, lambda text: _set_on_time(i, max_s, on_time, text))


def _set_on_time(i, max_s, pub, text):
    try:
        s = int(float(text))
    except ValueError:
        raise ValueError("not a number of seconds")  # reported on stat/<n>/Log
    if not 1 <= s <= max_s:
        raise ValueError("%d s out of range 1..%d" % (s, max_s))
    _on_s[i] = s
    _nv.set_int("on%d" % i, s)
    pub.check()


def _command(i, text):
    if text == "ON":  # Home Assistant's switch: on for the relay's on time
        text = str(_on_s[i])
    if not relays.command(i, text, ticks_ms()):
        raise ValueError("not an integer number of seconds")  # reported on stat/<n>/Log
    _tick()


def _tick():
    wait = relays.tick(ticks_ms())
    if wait is None:
        _timer.cancel()
    else:
        _timer.start(wait)


def _changed(i, on):
    _states[i].check()
