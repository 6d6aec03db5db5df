# The h2o page on the SSD1306 model: what the state says is what the panel shows.
from machine import I2C, Pin
from sim import models

from ssd1306 import SSD1306
from h2o.display import Page, uptime
from fwunit import eq


class State:
    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def page(level=60.0, tank_fault=0, flow_fault=0, rate=1.5, ip="192.168.1.20"):
    d = models.attach("i2c0", "SSD1306", 0x3C)
    tank = State(level_pct=level, malfunction=tank_fault)
    flow = State(rate=rate, malfunction=flow_fault)
    p = Page(SSD1306(I2C(0, scl=Pin(22), sda=Pin(21))), tank, flow, "L",
             lambda: "60% + 12L", lambda: ip, lambda: "up")
    return d, p


def bar(d, y=3):
    """Width of the level bar: the run of lit pixels from the left."""
    row = d.rows()[y]
    return len(row) - len(row.lstrip("#"))


def test_uptime():
    eq(uptime(0), "up 0d 00:00:00")
    eq(uptime((2 * 86400 + 3 * 3600 + 4 * 60 + 5) * 1000 + 999), "up 2d 03:04:05")


def test_shows_state():
    d, p = page()
    eq(p.refresh(), True)
    lines = d.text()
    eq(lines[0], "192.168.1.20")
    eq(lines[1], "MQTT up")
    eq(lines[2].startswith("up 0d "), True, lines[2])
    eq(lines[3:], ["60% + 12L", "1.5 L/min"])
    eq(bar(d), 128 * 60 // 100)


def test_no_net_and_error_code():
    d, p = page(ip=None, tank_fault=0x04, rate=None)
    p.refresh()
    lines = d.text()
    eq(lines[0], "no net")
    eq("ERR 0x04" in lines, True, lines)
    eq(lines[-1], "-")
    eq(bar(d, 3), 128 * 60 // 100, "half-height bar still there")
    eq(bar(d, 8), 0, "half height")


def test_bar_blinks_while_flowing():
    d, p = page(level=50.0, rate=3.0)
    frames = []
    for _ in range(4):
        p.refresh()
        frames.append(d.rows()[0].count("#"))
    eq(frames[0] != frames[1] and frames[0] == frames[2], True, frames)
    d, p = page(level=50, rate=0.0)
    frames = []
    for _ in range(3):
        p.refresh()
        frames.append(d.rows()[0].count("#"))
    eq(frames, [128] * 3, "steady outline when nothing flows")
