"""The simulated network.WLAN and network.LAN against ports/esp32/network_wlan.c and
network_lan.c: status() keeps the last disconnect reason until an IP is got (connect() does
not clear it), a missing SSID never connects, a wrong key, an access point that goes and
comes back on another channel, the reconnect budget; LAN takes the EMAC's pads, and a Pin,
I2C or UART on one of them cuts the Ethernet. Device time moves only by advance()."""

import socket

import pytest

from epx import build
from fwcode import last_json, run_code

# Device time frozen (a microsecond per real second): only advance() moves it, so no result
# depends on how busy the host is.
PRELUDE = """
import json, network, time, _simclock, sim
from sim import ctl
_simclock.scale(1e-6)
world = ctl.wifi_set
adv = _simclock.advance
w = network.WLAN(network.STA_IF)
w.active(True)
"""

# ESP-IDF's reasons and the port's status codes (modnetwork_globals.h, modnetwork.h).
IDLE, CONNECTING, GOT_IP = 1000, 1001, 1010
NO_AP_FOUND, WRONG_PASSWORD = 201, 202


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("coreunit")[0]


def run(fw, tmp_path, code):
    return last_json(run_code(fw, PRELUDE + code, tmp_path))


def test_status_keeps_the_last_reason_until_an_ip(fw, tmp_path):
    out = run(fw, tmp_path, """
seen = [w.status()]
w.connect("elsewhere", "k3y-k3y-k3y")
seen.append(w.status())          # the first attempt is running
adv(2500)
seen.append(w.status())          # it failed: no access point
w.disconnect()                   # never associated: nothing to leave, the reason stays
seen.append(w.status())
w.connect("elsewhere", "k3y-k3y-k3y")
seen.append(w.status())          # a new attempt, yet the old reason
world({"ssid": "elsewhere"})
adv(100)
seen.append(w.status())          # association takes delay_ms (0 here): got an IP
w.disconnect()
seen.append(w.status())          # ASSOC_LEAVE reads as idle
print(json.dumps(seen))
""")
    assert out == [IDLE, CONNECTING, NO_AP_FOUND, NO_AP_FOUND, NO_AP_FOUND, GOT_IP, IDLE]


def test_a_missing_ssid_never_connects(fw, tmp_path):
    out = run(fw, tmp_path, """
w.connect("no-such-net", None)
up = []
for _ in range(300):             # ten minutes, two seconds at a time
    adv(2000)
    up.append(w.isconnected())
print(json.dumps({"up": any(up), "status": w.status(), "ip": w.ifconfig()[0],
                  "scan": [ap[0].decode() for ap in w.scan()]}))
""")
    assert out == {"up": False, "status": NO_AP_FOUND, "ip": "0.0.0.0", "scan": ["epx-sim"]}


def test_wrong_password_then_the_right_one(fw, tmp_path):
    out = run(fw, tmp_path, """
world({"password": "right-key", "delay_ms": 1500})
w.connect("epx-sim", "wrong-key")
seen = []
for _ in range(3):
    adv(2100)
    seen.append(w.status())
w.connect("epx-sim", "right-key")
seen.append(w.status())          # still the last attempt's reason
adv(1500)
seen.append(w.status())
print(json.dumps(seen))
""")
    # A wrong WPA2 key: 4-way handshake timeout (15, not mapped: "connecting"), then
    # CONNECTION_FAIL (205), which the port reports as STAT_WRONG_PASSWORD.
    assert out == [CONNECTING, WRONG_PASSWORD, WRONG_PASSWORD, WRONG_PASSWORD, GOT_IP]


def test_access_point_gone_then_back_on_another_channel(fw, tmp_path):
    out = run(fw, tmp_path, """
world({"aps": [{"ssid": "home", "password": "h0me-key", "channel": 1},
               {"ssid": "neighbour", "password": "other-key", "channel": 6}]})
w.connect("home", "h0me-key")
adv(10)
seen = [w.isconnected(), w.config("channel")]
world({"ap": False})             # the first access point goes away
adv(10)
seen += [w.isconnected(), w.status()]   # beacon timeout (200): "connecting"
adv(2100)
seen.append(w.status())          # the driver's own retry found nothing
adv(3600000)
seen.append(w.isconnected())
world({"ap": True, "channel": 11})
adv(2100)                        # no connect(): the driver reassociates by itself
seen += [w.isconnected(), w.status(), w.config("channel")]
print(json.dumps(seen))
""")
    assert out == [True, 1, False, CONNECTING, NO_AP_FOUND, False, True, GOT_IP, 11]


def test_reconnect_budget_as_configured(fw, tmp_path):
    out = run(fw, tmp_path, """
w.config(reconnects=0)           # no reconnect after a loss
seen = [w.config("reconnects")]
w.connect("epx-sim", None)
adv(10)
seen.append(w.isconnected())
world({"ap": False})
adv(10)
seen.append(w.status())          # not retrying: the reason itself (beacon timeout)
world({"ap": True})
adv(10000)
seen.append(w.isconnected())
print(json.dumps(seen))
""")
    assert out == [0, True, 200, False]


LAN = """
from machine import I2C, Pin, UART
from sim import models
models.attach("i2c0", "SSD1306", 0x3C, {}, None, "oled")
models.attach("uart2", "PZEM", None, {}, None, "pzem")
lan = network.LAN(mdc=Pin(23), mdio=Pin(18), power=Pin(16), phy_type=network.PHY_LAN8720,
                  phy_addr=1, ref_clk=Pin(0), ref_clk_mode=Pin.IN)
lan.active(True)
def reach(port):
    s = __import__("socket").socket()
    try:
        s.connect(("127.0.0.1", port))
        return "ok"
    except OSError as e:
        return e.args[0]
    finally:
        s.close()
"""


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("taker, pad", [
    ("I2C(0, scl=Pin(22), sda=Pin(21)).scan()", 21),  # TX_EN, TXD1
    ("I2C(0).scan()", 18),  # I2C(0)'s default pins 18/19: MDIO and TXD0
    ("UART(2, 9600, tx=17, rx=16).any()", 16),  # the PHY's power pin
    ("Pin(27, Pin.IN).value()", 27),  # CRS_DV
])
def test_a_pad_the_emac_holds_cuts_the_ethernet(fw, tmp_path, listener, taker, pad):
    out = run(fw, tmp_path, LAN + f"""
before = [lan.isconnected(), reach({listener})]
got = {taker}
print(json.dumps(before + [reach({listener}), got]))
""")
    # No exception on the ESP32 either: the pad goes to the GPIO matrix, frames stop
    # (lwIP: no route), and the I2C/UART user reaches the PHY, not its device.
    assert out[:3] == [True, "ok", 113]  # EHOSTUNREACH
    assert out[3] in ([], 0)


def test_free_pads_leave_the_ethernet_alone(fw, tmp_path, listener):
    out = run(fw, tmp_path, LAN + f"""
found = I2C(0, scl=Pin(32), sda=Pin(33)).scan()
u = UART(2, 9600, tx=17, rx=5)
Pin(4, Pin.OUT, value=1)
print(json.dumps([found, reach({listener}), lan.status()]))
""")
    assert out == [[0x3C], "ok", 5]  # ETH_GOT_IP


def test_lan_arguments_checked_as_the_port_does(fw, tmp_path):
    out = run(fw, tmp_path, """
from machine import Pin
errors = []
for kw in ({"phy_type": network.PHY_LAN8720, "phy_addr": 32, "mdc": Pin(23), "mdio": Pin(18)},
           {"phy_type": 99, "phy_addr": 1, "mdc": Pin(23), "mdio": Pin(18)},
           {"phy_type": network.PHY_LAN8720, "phy_addr": 1}):
    try:
        network.LAN(**kw)
    except ValueError as e:
        errors.append(str(e))
print(json.dumps(errors))
""")
    assert out == ["invalid phy address", "invalid phy type", "mdc and mdio must be specified"]


def test_soft_ap_as_network_wlan_c(fw, tmp_path):
    """The soft AP: ESP-IDF's default (ESP_<MAC tail>, open, 192.168.4.1/24, 4 stations);
    essid/password/authmode/max_clients need AP_IF, reconnects STA_IF; a WPA2 passphrase
    under 8 characters is ESP_ERR_INVALID_ARG from esp_wifi_set_config; scan() needs the
    station active, whichever interface asks; a station joins only with the key."""
    out = run(fw, tmp_path, """
from sim import ctl
def err(f):
    try:
        f()
    except Exception as e:
        return "%s %s" % (type(e).__name__, e.args[-1])
ap = network.WLAN(network.AP_IF)
seen = [ap.config("essid"), ap.config("authmode"), ap.config("max_clients"), ap.ifconfig()]
seen.append(err(lambda: w.config(essid="x")))
seen.append(err(lambda: w.config("authmode")))
seen.append(err(lambda: ap.config(reconnects=1)))
seen.append(err(lambda: ap.config(essid="dev-ap", password="short", authmode=network.AUTH_WPA2_PSK)))
ap.config(essid="dev-ap", password="long-enough", authmode=network.AUTH_WPA2_PSK, max_clients=1)
seen.append(err(lambda: ctl.ap_join({"password": "long-enough"})))  # not active yet
ap.active(True)
seen += [ap.config("essid"), ap.isconnected(), ap.status("stations")]
seen.append(err(lambda: ctl.ap_join({"password": "wrong-key!"})))
seen += [ctl.ap_join({"password": "long-enough"}), ap.isconnected(), len(ap.status("stations"))]
seen.append(err(lambda: ctl.ap_join({"password": "long-enough", "mac": "second"})))
w.active(False)
seen.append(err(lambda: ap.scan()))
w.active(True)
seen.append([n[0].decode() for n in ap.scan()])
ap.active(False)
seen += [ap.isconnected(), ap.status("stations")]
print(json.dumps(seen))
""")
    assert out[0].startswith("ESP_") and len(out[0]) == 10 and out[1:3] == [0, 4]
    assert out[3] == ["192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0"]
    assert out[4:7] == ["OSError AP required", "OSError AP required", "OSError STA required"]
    assert out[7] == "RuntimeError Wifi Unknown Error 0x0102"
    assert out[8] == "OSError no access point"
    assert out[9:12] == ["dev-ap", False, []]
    assert out[12] == "OSError wrong password"
    assert out[13] == "192.168.4.2" and out[14:16] == [True, 1]
    assert out[16] == "OSError access point full (max_clients 1)"
    assert out[17] == "OSError STA must be active"
    assert out[18] == ["epx-sim"]
    assert out[19:] == [False, []]


def test_channels_as_esp_idf_country_allows(fw, tmp_path):
    """ESP-IDF's country is "01" (world safe mode: channels 1-11) and the v1.25 port never
    changes it: network.country() only stores a code (extmod/modnetwork.c, "XX" at first).
    config(channel=) on the station calls esp_wifi_set_channel, which refuses 12-14 with
    ESP_ERR_INVALID_ARG, raised by network_common.c:esp_exceptions_helper's default case
    as a RuntimeError; before active(True), ESP_ERR_WIFI_NOT_STARTED. Associated with an
    access point whose beacon names Germany, the AP's country applies
    (WIFI_COUNTRY_POLICY_AUTO): 12 and 13 are taken; a soft AP on 12 is refused as
    esp_wifi_set_config refuses it."""
    out = run(fw, tmp_path, """
def err(f):
    try:
        f()
        return "ok"
    except Exception as e:
        return "%s %s" % (type(e).__name__, e)
seen = [network.country()]
seen.append(err(lambda: network.country("DEU")))
network.country("DE")
seen.append(network.country())
seen += [err(lambda: w.config(channel=c)) for c in (1, 11, 12, 13, 14, 0)]
w.active(False)
seen.append(err(lambda: w.config(channel=6)))
w.active(True)
ap = network.WLAN(network.AP_IF)
seen.append(err(lambda: ap.config(channel=12)))
world({"channel": 13, "country": "DE"})
w.connect("epx-sim")
adv(100)
seen += [w.isconnected(), w.config("channel")]
seen += [err(lambda: w.config(channel=c)) for c in (12, 14)]
print(json.dumps(seen))
""")
    invalid = "RuntimeError Wifi Unknown Error 0x0102"
    assert out[:3] == ["XX", "ValueError ", "DE"]
    assert out[3:9] == ["ok", "ok", invalid, invalid, invalid, invalid]
    assert out[9] == "OSError Wifi Not Started"
    assert out[10] == invalid
    assert out[11:13] == [True, 13]
    assert out[13:] == ["ok", invalid]
