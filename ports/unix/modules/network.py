# The simulated ESP32 `network` module (MicroPython v1.25.0, ports/esp32): WLAN and LAN
# whose link follows the WiFi world the host sets (wifi.set: ap, password, drop, delay_ms).
# Association runs on the device clock; status codes are ESP-IDF's.
import time as _time

import sim as _sim

STA_IF = const(0)
AP_IF = const(1)

STAT_IDLE = const(1000)
STAT_CONNECTING = const(1001)
STAT_GOT_IP = const(1010)
STAT_BEACON_TIMEOUT = const(200)
STAT_NO_AP_FOUND = const(201)
STAT_WRONG_PASSWORD = const(202)
STAT_ASSOC_FAIL = const(203)
STAT_CONNECT_FAIL = const(203)
STAT_HANDSHAKE_TIMEOUT = const(204)
STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY = const(210)
STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD = const(211)
STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD = const(212)
_ASSOC_LEAVE = const(8)

MODE_11B = const(1)
MODE_11G = const(2)
MODE_11N = const(4)
MODE_LR = const(8)

AUTH_OPEN = const(0)
AUTH_WEP = const(1)
AUTH_WPA_PSK = const(2)
AUTH_WPA2_PSK = const(3)
AUTH_WPA_WPA2_PSK = const(4)
AUTH_WPA2_ENTERPRISE = const(5)
AUTH_WPA3_PSK = const(6)
AUTH_WPA2_WPA3_PSK = const(7)
AUTH_MAX = const(14)

PHY_LAN8710 = const(0)
PHY_LAN8720 = const(1)
PHY_IP101 = const(2)
PHY_RTL8201 = const(3)
PHY_DP83848 = const(4)
PHY_KSZ8041 = const(5)
PHY_KSZ8081 = const(6)

ETH_INITIALIZED = const(0)
ETH_STARTED = const(1)
ETH_STOPPED = const(2)
ETH_CONNECTED = const(3)
ETH_DISCONNECTED = const(4)
ETH_GOT_IP = const(5)

_hostname = "mpy-esp32"
_country = "01"
_links = 0  # counts links coming up: a socket opened on an older link is dead


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


def country(code=None):
    global _country
    if code is None:
        return _country
    _country = code


def phy_mode(mode=None):
    if mode is None:
        return MODE_11B | MODE_11G | MODE_11N


def ipconfig(*args, **kw):
    if args:
        if args[0] == "prefer":
            return 4
        raise ValueError("unexpected key")


def _mac(offset):
    m = bytearray(_sim.mac())
    m[5] = (m[5] + offset) & 0xFF
    return bytes(m)


def _address(mac):
    return "192.168.4.%d" % (2 + mac[5] % 250)


class _Interface:
    # Link state evaluated on demand from the world and the device clock.
    def __init__(self, mac_offset):
        self._mac = _mac(mac_offset)
        self._active = False
        self._requested = False
        self._since = 0
        self._up = False
        self._generation = _sim.wifi["generation"]
        self._reason = 0
        self._link = None
        self._static = None

    def _update(self):
        w = _sim.wifi
        if self._up and (w["generation"] != self._generation or not w["ap"]):
            # Link lost: beacon timeout; the driver keeps trying (ESP32's reconnect loop).
            self._up = False
            self._reason = STAT_BEACON_TIMEOUT
            self._since = _time.ticks_ms()
        self._generation = w["generation"]
        if self._up or not (self._active and self._requested):
            return
        if _time.ticks_diff(_time.ticks_ms(), self._since) < (w.get("delay_ms") or 0):
            return
        if not w["ap"]:
            self._reason = STAT_NO_AP_FOUND
        elif not self._accepts(w.get("password")):
            self._reason = STAT_WRONG_PASSWORD
        else:
            global _links
            _links += 1
            self._link = _links
            self._up = True
            self._reason = 0

    def _accepts(self, password):
        return True

    def _start_link(self):
        self._requested = True
        self._up = False
        self._reason = 0
        self._since = _time.ticks_ms()

    def active(self, is_active=None):
        if is_active is None:
            return self._active
        self._active = bool(is_active)
        if not self._active:
            self._requested = False
            self._up = False
            self._reason = 0

    def isconnected(self):
        self._update()
        return self._up

    def ifconfig(self, config=None):
        if config is None:
            if not self.isconnected() and self._static is None:
                return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
            return self._static or (_address(self._mac), "255.255.255.0", "192.168.4.1", "192.168.4.1")
        self._static = tuple(config)

    def ipconfig(self, *args, **kw):
        if kw:
            return
        if len(args) != 1:
            raise TypeError("can query only one param")
        key = args[0]
        ip, mask, gw, _ = self.ifconfig()
        if key == "addr4":
            return (ip, mask)
        if key == "gw4":
            return gw
        if key == "dhcp4":
            return self._static is None
        if key == "has_dhcp4":
            return self.isconnected()
        raise ValueError("unexpected key")


class WLAN(_Interface):
    IF_STA = const(0)
    IF_AP = const(1)
    SEC_OPEN = const(0)
    SEC_WEP = const(1)
    SEC_WPA = const(2)
    SEC_WPA2 = const(3)
    SEC_WPA_WPA2 = const(4)
    SEC_WPA2_ENT = const(5)
    SEC_WPA3 = const(6)
    SEC_WPA2_WPA3 = const(7)
    PM_NONE = const(0)
    PM_PERFORMANCE = const(1)
    PM_POWERSAVE = const(2)

    _interfaces = {}

    def __new__(cls, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        wlan = WLAN._interfaces.get(interface_id)
        if wlan is None:
            wlan = WLAN._interfaces[interface_id] = object.__new__(cls)
            _Interface.__init__(wlan, interface_id)
            wlan._if = interface_id
            wlan._config = {"ssid": "", "key": "", "channel": 1, "reconnects": -1,
                            "txpower": 20, "pm": 1, "security": 0 if interface_id else 3}
        return wlan

    def __init__(self, interface_id=STA_IF):
        pass

    def _accepts(self, password):
        return password is None or password == self._config["key"]

    def connect(self, *args, bssid=None):
        # ssid and key are positional only (network_wlan.c:network_wlan_connect)
        ssid = args[0] if args else None
        key = args[1] if len(args) > 1 else None
        if self._if != STA_IF:
            raise OSError("STA required")
        if not self._active:
            raise OSError("Wifi Not Started")
        if ssid is not None:
            self._config["ssid"] = ssid
            self._config["key"] = key or ""
        self._start_link()

    def disconnect(self):
        self._requested = False
        self._up = False
        self._reason = _ASSOC_LEAVE

    def status(self, param=None):
        if param is None:
            if self._if != STA_IF:
                return None
            self._update()
            if self._up:
                return STAT_GOT_IP
            if self._reason in (STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD):
                return self._reason
            if self._reason == _ASSOC_LEAVE:
                return STAT_IDLE
            if self._requested:
                return STAT_CONNECTING
            return STAT_IDLE if self._reason == 0 else self._reason
        if param == "rssi":
            if not self.isconnected():
                raise OSError("STA must be connected")
            return -55
        if param == "stations":
            return []
        raise ValueError("unknown status param")

    def scan(self):
        if not self._active:
            raise OSError("STA must be active")
        if not _sim.wifi["ap"]:
            return []
        return [(b"epx-sim", b"\x02\x00\x00\x00\x00\x01", 1, -55, 3, False)]

    def config(self, *args, **kw):
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw:
            for key, value in kw.items():
                if key == "mac":
                    self._mac = bytes(value)
                elif key in ("hostname", "dhcp_hostname"):
                    hostname(value)
                elif key in self._config or key in ("essid", "password", "authmode", "max_clients"):
                    self._config[{"essid": "ssid", "password": "key"}.get(key, key)] = value
                else:
                    raise ValueError("unknown config param")
            return
        if len(args) != 1:
            raise TypeError("can query only one param")
        key = args[0]
        if key == "mac":
            return self._mac
        if key in ("hostname", "dhcp_hostname"):
            return hostname()
        if key == "essid":
            key = "ssid"
        if key in ("ssid", "channel", "reconnects", "txpower", "pm", "security"):
            return self._config[key]
        if key == "authmode":
            return self._config["security"]
        raise ValueError("unknown config param")


class _LAN(_Interface):
    # A wired board: the cable follows the same world switch as the AP (wifi.set ap/drop).
    def __init__(self):
        super().__init__(3)

    def active(self, is_active=None):
        r = super().active(is_active)
        if is_active:
            self._start_link()
        return r

    def status(self):
        if not self._active:
            return ETH_STOPPED
        return ETH_GOT_IP if self.isconnected() else ETH_DISCONNECTED

    def config(self, *args, **kw):
        if kw:
            if "mac" in kw:
                self._mac = bytes(kw["mac"])
            return
        if args and args[0] == "mac":
            return self._mac
        raise ValueError("unknown config param")


_lan = None


def LAN(id=0, *, mdc=None, mdio=None, power=None, phy_addr=None, phy_type=None, ref_clk_mode=None,
        ref_clk=None, spi=None, cs=None, int=None):
    global _lan
    if _lan is None:
        _lan = _LAN()
    return _lan


def _link():
    """The number of the link in place (any interface), None when no link is up."""
    for nic in (WLAN._interfaces.get(STA_IF), _lan):
        if nic is not None and nic.isconnected():
            return nic._link
    return None
