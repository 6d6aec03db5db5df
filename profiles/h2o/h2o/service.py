# The h2o appliance: tank level from float switches on an MCP23017 (I2C0, pins sda/scl),
# flow from a pulse meter (pin flowpin), an optional SSD1306; published under stat/<n>/.
from machine import I2C, Pin
from micropython import const

from epx import config, loop, mqtt, net, pins
from epx.pulse import PulseCounter
from h2o.display import Page
from h2o.flow import Flow
from h2o.level import Tank
from mcp23017 import MCP23017
from ssd1306 import SSD1306

_MCP_ADDR = const(0x20)
_OLED_ADDR = const(0x3C)
_TICK_MS = const(1000)
_MAX_SENSORS = const(16)  # the expander's inputs
_PUMPED_MS = const(60000)
_PUMPED_STALE_MS = const(1800000)


def _label(text):
    if not text:
        raise ValueError("empty")
    return text


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise ValueError("%r is not a number above 0" % text)
    return value


def _sensors(text):
    if not text.strip():
        raise ValueError("empty: the level switches' percentages, e.g. 20,40,60,80,100")
    values = config.ascending_floats(text)
    if len(values) > _MAX_SENSORS:
        raise ValueError("%d switches, the MCP23017 has %d inputs" % (len(values), _MAX_SENSORS))
    if values[0] <= 0 or values[-1] > 100:
        raise ValueError("%r: percentages must be above 0 and at most 100" % text)
    return values


UNIT = config.key("unit", _label, doc="Volume unit||L|Of capacity and flow: L, m3, gal...")
CAPACITY = config.key("capacity", _positive, doc="Tank capacity|volume unit|1000|The tank's volume")
SENSORS = config.key("levelsensors", _sensors, doc="Level switches|%|20,40,60,80,100|Each float switch's level, bottom to top")
PULSERATE = config.key("flowpulserate", _positive, doc="Flow meter rate|pulses/s per volume unit/min|7.5|YF-S201: 7.5, FS300A: 5.5")
MAXFLOW = config.key("maxflow", _positive, 60.0, "Highest flow|volume unit/min|60|Faster pulses are a meter fault, not water")
SDA = pins.key("sda", pins.OUT, doc="I2C data pin|GPIO||The expander's and display's SDA")
SCL = pins.key("scl", pins.OUT, doc="I2C clock pin|GPIO||The expander's and display's SCL")
FLOW_PIN = pins.key("flowpin", pins.IRQ, doc="Flow meter pin|GPIO||The meter's pulse input (not 36 or 39)")
FLOW_PULL = config.key("flowpull", config.one_of("none", "up", "down"), "none",
                       "Flow meter pull||none|The input's pull: up for a reed contact to ground")
FLOW_DEBOUNCE = config.key("flowdebounce", config.int_range(0, 100), 0,
                           "Flow meter debounce|ms|0|A reed contact's bounce window; 0 for clean edges")
_PULLS = {"none": None, "up": Pin.PULL_UP, "down": Pin.PULL_DOWN}


def _debounce_fits(value):
    # The meter's high and low halves at maxflow must outlast the debounce window.
    ms = value("flowdebounce", 0)
    rate = value("maxflow", 60.0) * (value("flowpulserate") or 0)
    if ms and rate and ms * rate * 2 >= 1000:
        return "flowdebounce", ("%d ms swallows pulses at maxflow (%.0f a second: halves of "
                                "%.1f ms)" % (ms, rate, 500 / rate))
    return None


config.rule(_debounce_fits)

tank = None
flow = None
page = None


def setup():
    global tank, flow, page
    i2c = I2C(0, scl=Pin(SCL.value), sda=Pin(SDA.value), freq=400000)
    counter = PulseCounter(Pin(FLOW_PIN.value, Pin.IN, _PULLS[FLOW_PULL.value]),
                           FLOW_DEBOUNCE.value)
    flow = Flow(counter, PULSERATE.value, MAXFLOW.value)
    tank = Tank(MCP23017(i2c, _MCP_ADDR), SENSORS.value, CAPACITY.value, _level_changed)
    page = Page(SSD1306(i2c, addr=_OLED_ADDR), tank, flow, UNIT.value, estimate_text, net.ip,
                lambda: "up" if mqtt.connected else "down")
    loop.every(_TICK_MS, _tick)
    mqtt.describe("Water tank monitor")
    mqtt.retire("sensor/Malfunction")  # 41c0f67: a sensor; a binary_sensor since
    u = UNIT.value
    mqtt.pub("VolUnit", lambda: u, "%s", check_s=60000, force_s=1800, retain=True)
    mqtt.pub("CoarseLevelPct", lambda: tank.level_pct, "%.0f", check_s=1, force_s=600, ha={"name": "Level", "unit_of_measurement": "%"})
    mqtt.pub("CoarseLevelVol", lambda: tank.level_vol, "%.0f", check_s=1, force_s=600,
             ha={"name": "Volume", "device_class": "volume_storage", "unit_of_measurement": u})
    mqtt.pub("EstimatedLevelVol", lambda: estimate()[0], "%.0f", check_s=10, force_s=600,
             ha={"name": "Estimated volume", "device_class": "volume_storage", "unit_of_measurement": u})
    mqtt.pub("EstimatedLevelStr", estimate_text, "%s", check_s=10, force_s=600,
             ha={"name": "Estimated level"})
    # Flow: every 10 s while water flows, else on change and every 30 min (one topic).
    # (force_s under check_s: forced at every check, counted from the last send.)
    mqtt.pub("Flow", lambda: flow.rate or None, "%.1f", check_s=10, force_s=5)
    mqtt.pub("Flow", _still, "%.1f", check_s=10, force_s=1800, ha=("volume_flow_rate", u + "/min"))
    mqtt.pub("PumpedAfterLevelChange", lambda: flow.since_level, "%.1f", check_s=10, force_s=1800, ha={"name": "Pumped since level change", "device_class": "volume", "unit_of_measurement": u,
                 "state_class": "total_increasing"})
    mqtt.pub("Malfunction", malfunction, "%d", check_s=1, force_s=1800, ha=mqtt.MALFUNCTION)
    loop.every(_PUMPED_MS, _send_pumped)


def _tick():
    tank.sample()
    flow.tick()
    page.refresh()


# Pumped: the volume since the previous Pumped message, taken off only once the message
# was sent, so a broker outage loses none. One message in flight at a time; one given up
# on after _PUMPED_STALE_MS (dropped from a full queue) is sent again with what came since.
_claim = None  # [volume] of the message in flight
_claim_at = 0


def _send_pumped():
    global _claim, _claim_at
    if _claim and loop.uptime_ms() - _claim_at > _PUMPED_STALE_MS:
        _claim = None
    if _claim or not mqtt.connected:
        return
    tenths = flow.unsent_tenths()  # what the message says is what is taken off
    if tenths:
        claim = _claim = [tenths]
        _claim_at = loop.uptime_ms()
        mqtt.publish("Pumped", "%d.%d" % divmod(tenths, 10), done=lambda: _pumped_sent(claim))


def _pumped_sent(claim):
    global _claim
    flow.reported(claim[0])
    if _claim is claim:
        _claim = None


def _level_changed(old, new):
    flow.level_changed()


def _still():
    rate = flow.rate
    return None if rate else rate  # 0.0 when nothing flows, None when unknown


def malfunction():
    return tank.malfunction | flow.malfunction


def estimate():
    """(volume, pumped since the level was reached): capped at the next switch."""
    return tank.estimate(flow.since_level)


def estimate_text():
    volume, pumped = estimate()
    if volume is None:
        return None
    return "%.0f%% + %.0f%s" % (tank.level_pct, pumped, UNIT.value)
