# The simulated ESP32 `network` module (MicroPython v1.25.0, ports/esp32): WLAN keeps its
# status as network_wlan.c does (the last disconnect reason stays until an IP is got; the
# driver retries while a connection is requested) against the access points of the world
# the host sets (wifi.set); LAN holds the EMAC's pads while it lives. Time is device _time.
import time as _time

import sim as _sim
from sim import pads as _pads

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

# ESP-IDF's wifi_err_reason_t values the port passes through status() or maps.
_REASON_ASSOC_LEAVE = const(8)  # wlan.disconnect(): status() says STAT_IDLE
_REASON_4WAY_HANDSHAKE_TIMEOUT = const(15)  # a wrong WPA2 key, first attempt
_REASON_CONNECTION_FAIL = const(205)  # a wrong key, later attempts: STAT_WRONG_PASSWORD

_hostname = "mpy-esp32"
_country = "XX"  # extmod/modnetwork.c:mod_network_country_code
_links = 0  # counts links coming up: a socket opened on an older link is dead


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


def country(code=None):
    # extmod/modnetwork.c:network_country stores the code only: the v1.25 ESP32 port never
    # calls esp_wifi_set_country, so ESP-IDF keeps its own country (below).
    global _country
    if code is None:
        return _country
    if len(code) != 2:
        raise ValueError
    _country = code[:2]


# ESP-IDF's country (esp_wifi.h: esp_wifi_set_country): "01", world safe mode, channels
# 1-11, with WIFI_COUNTRY_POLICY_AUTO: while the station is associated with an access
# point that names its country (the beacon's country IE, the world's "country"), that
# country's channels apply. Channel ranges as esp_wifi_set_country_code's table.
_IDF_COUNTRY = "01"
_ESP_ERR_INVALID_ARG_TEXT = "Wifi Unknown Error 0x0102"  # network_common.c: default case


def _channels(code):
    return 14 if code == "JP" else 11 if code in ("01", "US", "CA", "TW") else 13


def _radio_channels():
    sta = WLAN._interfaces.get(STA_IF)
    if sta is not None and sta.isconnected() and sta._ap.get("country"):
        return _channels(sta._ap["country"])
    return _channels(_IDF_COUNTRY)


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


# How long the radio has been on this boot (either interface active), device ms.
_radio_on_at = None
_radio_total = 0


def _radio_ms():
    on = 0 if _radio_on_at is None else _time.ticks_diff(_time.ticks_ms(), _radio_on_at)
    return _radio_total + on


# What the WiFi driver holds on the IDF heap from esp_wifi_init to the chip's reset (the
# port never deinitialises it), charged to the modelled RAM (simram.c) when the radio first
# comes on: CONFIG_ESP_WIFI_STATIC_RX_BUFFER_NUM (10) buffers of about 1.6 KB and the WiFi
# task's stack (6656 bytes, as IDF logs it). A lower bound: the driver's own state and the
# dynamic TX and RX buffers of traffic are not counted.
_WIFI_RX_BUFFERS = const(10)
_WIFI_RX_BUFFER = const(1600)
_WIFI_TASK_STACK = const(6656)
_wifi_ram = False


def _wifi_init():
    global _wifi_ram
    if not _wifi_ram:
        _wifi_ram = True
        import _simram

        for _ in range(_WIFI_RX_BUFFERS):
            _simram.take(_WIFI_RX_BUFFER)
        _simram.take(_WIFI_TASK_STACK)


def _radio(is_on):
    global _radio_on_at, _radio_total
    if is_on:
        _wifi_init()
    if is_on and _radio_on_at is None:
        _radio_on_at = _time.ticks_ms()
    elif not is_on and _radio_on_at is not None:
        _radio_total = _radio_ms()
        _radio_on_at = None


def _new_link():
    global _links
    _links += 1
    return _links


# The soft AP (network_wlan.c, ESP-IDF's defaults): its netif is 192.168.4.1/24; stations
# join it from the host (ctl op ap.join, with its password); each join is a link of its
# own, lost when the AP stops.
_AP_IP = "192.168.4.1"
_AP_DEFAULT_MAX = const(4)


class _Interface:
    def __init__(self, mac_offset):
        self._mac = _mac(mac_offset)
        self._active = False
        self._up = False
        self._link = None
        self._static = None

    def isconnected(self):
        _sim.stack_mark()
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


def _find_ap(ssid):
    for ap in _sim.wifi["aps"]:
        if ap["up"] and ap["ssid"] == ssid:
            return ap
    return None


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
            wlan._setup(interface_id)
        return wlan

    def __init__(self, interface_id=STA_IF):
        pass

    def _setup(self, interface_id):
        _Interface.__init__(self, interface_id)
        self._if = interface_id
        self._config = {"ssid": "", "key": "", "txpower": 20, "pm": 1,
                        "security": 0 if interface_id else 3}
        if interface_id == AP_IF:  # ESP-IDF's default soft AP: ESP_<MAC tail>, open
            self._config["ssid"] = "ESP_%02X%02X%02X" % tuple(self._mac[3:])
            self._config["max_clients"] = _AP_DEFAULT_MAX
            self._stations = {}  # mac -> link
        self._channel = 1
        # network_wlan.c's statics: wifi_sta_connect_requested, wifi_sta_disconn_reason,
        # conf_wifi_sta_reconnects (0 = forever), wifi_sta_reconnects.
        self._requested = False
        self._reason = 0
        self._conf_reconnects = 0
        self._reconnects = 0
        self._trying = False  # the driver is in an association attempt
        self._attempt_ms = 0  # when the attempt in progress started
        self._key_failures = 0  # handshakes failed since connect()
        self._ap = None  # the access point (world entry) associated with, and its epoch
        self._ap_epoch = 0
        self._generation = 0

    # --- the driver, evaluated on demand against the world and the device clock ---------

    def _update(self):
        if self._if != STA_IF:
            return
        w = _sim.wifi
        if self._up:
            ap = self._ap
            if w["generation"] == self._generation and ap["up"] and ap["epoch"] == self._ap_epoch:
                return
            self._disconnected(STAT_BEACON_TIMEOUT)
        if not self._trying:
            return
        now = _time.ticks_ms()
        elapsed = _time.ticks_diff(now, self._attempt_ms)
        ap = _find_ap(self._config["ssid"])
        if ap is not None and self._accepts(ap):
            if elapsed >= (w.get("delay_ms") or 0):
                self._got_ip(ap)
            return
        # Each attempt (a scan of every channel, a handshake) fails after scan_ms; as many
        # as fitted in the time since the last look.
        scan_ms = max(1, w["scan_ms"])
        failed = elapsed // scan_ms
        if not failed:
            return
        if ap is None:
            reason = STAT_NO_AP_FOUND
        else:
            self._key_failures += failed
            reason = (_REASON_4WAY_HANDSHAKE_TIMEOUT if self._key_failures == 1
                      else _REASON_CONNECTION_FAIL)
        next_ms = _time.ticks_add(self._attempt_ms, failed * scan_ms)
        self._disconnected(reason, failed)
        self._attempt_ms = next_ms  # the driver's retries keep their pace

    def _accepts(self, ap):
        return ap["password"] is None or ap["password"] == self._config["key"]

    def _got_ip(self, ap):
        # IP_EVENT_STA_GOT_IP: the only place the last reason is cleared.
        self._up = True
        self._trying = False
        self._reason = 0
        self._ap = ap
        self._ap_epoch = ap["epoch"]
        self._generation = _sim.wifi["generation"]
        self._channel = ap["channel"]
        self._link = _new_link()

    def _disconnected(self, reason, times=1):
        # WIFI_EVENT_STA_DISCONNECTED (`times` in a row): keep the reason; reconnect while
        # requested, up to the configured number of reconnects.
        self._up = False
        self._trying = False
        self._reason = reason
        if not self._requested or not self._active:
            return
        if self._conf_reconnects:
            self._reconnects += times
            if self._reconnects >= self._conf_reconnects:
                return
        self._start_attempt()

    def _start_attempt(self):
        self._trying = True
        self._attempt_ms = _time.ticks_ms()

    # --- the API ------------------------------------------------------------------------

    def active(self, is_active=None):
        _sim.stack_mark()
        if is_active is None:
            return self._active
        is_active = bool(is_active)
        if is_active == self._active:
            return is_active
        if self._if == AP_IF:
            self._stations.clear()  # stopped or started, the AP has no station yet
            self._active = is_active
            self._radio_update()
            return is_active
        if not is_active:
            # esp_wifi_stop: an association ends (ASSOC_LEAVE); the connect request stays.
            self._update()
            if self._up:
                self._reason = _REASON_ASSOC_LEAVE
            self._up = False
            self._trying = False
        else:
            self._reconnects = 0  # WIFI_EVENT_STA_START
        self._active = is_active
        self._radio_update()
        return is_active

    def _radio_update(self):
        _radio(any(i._active for i in WLAN._interfaces.values()))

    def connect(self, *args, bssid=None):
        _sim.stack_mark()
        # ssid and key are positional only (network_wlan.c:network_wlan_connect)
        ssid = args[0] if args else None
        key = args[1] if len(args) > 1 else None
        if self._if != STA_IF:
            raise OSError("STA required")
        if not self._active:
            raise OSError("Wifi Not Started")
        if bssid is not None and len(bssid) != 6:
            raise ValueError
        if ssid is not None or key is not None:
            # A fresh wifi_config_t: the channel set by config() is forgotten (every
            # channel is scanned).
            self._config["ssid"] = ssid or ""
            self._config["key"] = key or ""
        self._update()
        if self._up:
            self._up = False
            self._reason = _REASON_ASSOC_LEAVE
        # No reason is cleared here: status() reports the last one until an IP is got.
        self._reconnects = 0
        self._key_failures = 0
        self._requested = True
        self._start_attempt()

    def disconnect(self):
        self._update()
        self._requested = False
        self._trying = False
        if self._up:
            # Only a station that was associated sees the event (ASSOC_LEAVE); one still
            # searching keeps its last reason.
            self._up = False
            self._reason = _REASON_ASSOC_LEAVE

    def isconnected(self):
        if self._if != STA_IF:
            return self._active and bool(self._stations)  # a station has joined
        return _Interface.isconnected(self)

    def ifconfig(self, config=None):
        if self._if == AP_IF and config is None and self._static is None:
            # The AP's netif keeps its address while the AP is stopped; the DNS server is
            # lwIP's global one (the station's, once it has one).
            sta = WLAN._interfaces.get(STA_IF)
            dns = sta.ifconfig()[3] if sta is not None else "0.0.0.0"
            return (_AP_IP, "255.255.255.0", _AP_IP, dns)
        return _Interface.ifconfig(self, config)

    def _join(self, mac, password):
        # A station associating (the host as a phone): the AP's WPA2 key must match.
        if not self._active:
            raise OSError("no access point")
        sec = self._config["security"]
        if sec != AUTH_OPEN and password != self._config["key"]:
            raise OSError("wrong password")
        if mac not in self._stations and len(self._stations) >= self._config["max_clients"]:
            raise OSError("access point full (max_clients %d)" % self._config["max_clients"])
        self._stations[mac] = _new_link()
        return "192.168.4.%d" % (1 + len(self._stations))  # the DHCP server starts at .2

    def _leave(self, mac):
        self._stations.pop(mac, None)

    def status(self, param=None):
        _sim.stack_mark()
        if param is None:
            if self._if != STA_IF:
                return None
            # network_wlan.c:network_wlan_status, case by case.
            self._update()
            r = self._reason
            if self._up:
                return STAT_GOT_IP
            if r in (STAT_NO_AP_FOUND, STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD,
                     STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD,
                     STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY):
                return r
            if r in (STAT_WRONG_PASSWORD, _REASON_CONNECTION_FAIL):
                return STAT_WRONG_PASSWORD
            if r == _ASSOC_LEAVE:
                return STAT_IDLE
            if self._requested and (self._conf_reconnects == 0
                                    or self._reconnects < self._conf_reconnects):
                return STAT_CONNECTING
            if r == 0:
                return STAT_IDLE
            return r
        if param == "rssi":
            if self._if != STA_IF:
                raise OSError("STA required")
            if not self.isconnected():
                raise OSError("Wifi Not Connected")  # esp_wifi_sta_get_ap_info
            return self._ap.get("rssi", -55)
        if param == "stations":
            if self._if != AP_IF:
                raise OSError("AP required")
            return [(m, -50) for m in self._stations] if self._active else []
        raise ValueError("unknown status param")

    def scan(self):
        _sim.stack_mark()
        # Asked of either interface, it needs the station on (network_wlan.c: the mode).
        sta = WLAN._interfaces.get(STA_IF)
        if sta is None or not sta._active:
            raise OSError("STA must be active")
        return [(ap["ssid"].encode(), ap["bssid"], ap["channel"], ap.get("rssi", -55),
                 AUTH_OPEN if ap["password"] is None else AUTH_WPA2_PSK, False)
                for ap in _sim.wifi["aps"] if ap["up"]]

    def config(self, *args, **kw):
        _sim.stack_mark()
        # network_wlan.c:network_wlan_config: the AP's keys need AP_IF, reconnects STA_IF
        # (checked after the value is taken); one esp_wifi_set_config at the end.
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw:
            cfg = dict(self._config)
            for key, value in kw.items():
                req = None
                if key == "mac":
                    if len(value) != 6:
                        raise ValueError("invalid buffer length")
                    cfg["mac"] = bytes(value)
                elif key in ("hostname", "dhcp_hostname"):
                    hostname(value)
                elif key == "channel":
                    # STA: the starting channel of a scan, and the radio's channel
                    # (ESP-NOW) through esp_wifi_set_channel, checked at once against
                    # ESP-IDF's country; AP: the channel it beacons on (esp_wifi_set_config).
                    value = _sim.get_int(value) & 0xFF  # uint8_t channel
                    if self._if == STA_IF:
                        if not self._active:
                            raise OSError("Wifi Not Started")
                        if not 0 < value <= _radio_channels():
                            raise RuntimeError(_ESP_ERR_INVALID_ARG_TEXT)
                    cfg["channel"] = value
                elif key == "reconnects":
                    req = STA_IF
                    cfg["reconnects"] = 0 if value == -1 else value + 1
                elif key in ("ssid", "essid"):
                    req = AP_IF
                    cfg["ssid"] = value.encode()[:32].decode()
                elif key in ("key", "password"):
                    req = AP_IF
                    cfg["key"] = value.encode()[:63].decode()
                elif key in ("security", "authmode"):
                    req = AP_IF
                    cfg["security"] = value
                elif key in ("hidden", "max_clients"):
                    req = AP_IF
                    cfg[key] = value
                elif key in ("txpower", "pm", "protocol"):
                    cfg[key] = value
                else:
                    raise ValueError("unknown config param")
                if req is not None and req != self._if:
                    raise OSError("AP required" if req == AP_IF else "STA required")
            if self._if == AP_IF and (cfg["security"] != AUTH_OPEN and len(cfg["key"]) < 8
                                      or not 0 < cfg.get("channel", 1) <= _radio_channels()):
                # esp_wifi_set_config: a WPA/WPA2 AP's passphrase is 8-63 characters, the
                # channel one of the country's; esp_exceptions has no case for
                # ESP_ERR_INVALID_ARG
                raise RuntimeError(_ESP_ERR_INVALID_ARG_TEXT)
            if "mac" in cfg:
                self._mac = cfg.pop("mac")
            if "channel" in cfg:
                self._channel = cfg.pop("channel")
            if "reconnects" in cfg:
                self._conf_reconnects = cfg.pop("reconnects")
            self._config = cfg
            return
        if len(args) != 1:
            raise TypeError("can query only one param")
        key = args[0]
        req = None
        if key == "mac":
            return self._mac
        if key in ("hostname", "dhcp_hostname"):
            req, value = STA_IF, hostname()
        elif key == "channel":
            self._update()
            value = self._channel  # esp_wifi_get_channel: the AP's once associated
        elif key == "reconnects":
            req, value = STA_IF, self._conf_reconnects - 1
        elif key in ("ssid", "essid"):
            value = self._config["ssid"]
        elif key in ("security", "authmode"):
            req, value = AP_IF, self._config["security"]
        elif key in ("hidden", "max_clients"):
            req = AP_IF if key == "hidden" else None
            value = self._config.get(key, False if key == "hidden" else _AP_DEFAULT_MAX)
        elif key in ("txpower", "pm"):
            value = self._config[key]
        else:
            raise ValueError("unknown config param")
        if req is not None and req != self._if:
            raise OSError("AP required" if req == AP_IF else "STA required")
        return value


# The ESP32 EMAC's fixed RMII pads (TXD0, TX_EN, TXD1, RXD0, RXD1, CRS_DV); REF_CLK, MDC,
# MDIO and the PHY power pin come from the arguments (ETH_ESP32_EMAC_DEFAULT_CONFIG: clock
# in on GPIO 0).
_RMII = (19, 21, 22, 25, 26, 27)
_REF_CLK_DEFAULT = const(0)


class _LAN(_Interface):
    # The cable follows the world (wifi.set cable); eth_status as network_lan.c keeps it.
    def __init__(self, pins):
        super().__init__(3)
        self._status = ETH_INITIALIZED
        self._generation = _sim.wifi["generation"]
        self._pins = pins
        self._lost_pad = None  # a pad taken by Pin/I2C/UART: the EMAC no longer has it
        _pads.hold(pins, "Ethernet", self._pad_taken)

    def _pad_taken(self, n):
        # machine_pin.c moves the pad to the GPIO matrix without a word: frames stop.
        self._lost_pad = n
        self._link = None

    def _update(self):
        w = _sim.wifi
        if not self._active:
            self._up = False
            return
        cable = w.get("cable", True)
        if self._up and (not cable or w["generation"] != self._generation):
            self._up = False
            self._status = ETH_DISCONNECTED
        self._generation = w["generation"]
        if not self._up and cable:
            self._up = True
            self._status = ETH_GOT_IP
            self._link = None if self._lost_pad is not None else _new_link()

    def active(self, is_active=None):
        if is_active is not None:
            is_active = bool(is_active)
            if is_active and not self._active:
                self._status = ETH_STARTED
            elif not is_active and self._active:
                self._status = ETH_STOPPED
                self._up = False
            self._active = is_active
        return self._active

    def isconnected(self):
        self._update()
        return self._active and self._status == ETH_GOT_IP

    def status(self):
        self._update()
        return self._status

    def config(self, *args, **kw):
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw:
            if "mac" in kw:
                mac = bytes(kw["mac"])
                if len(mac) != 6:
                    raise ValueError("invalid buffer length")
                self._mac = mac
            return
        if len(args) != 1:
            raise TypeError("can query only one param")
        if args[0] == "mac":
            return self._mac
        if args[0] == "ifname":
            return "en0"
        raise ValueError("unknown config param")


_lan = None
_PHY_TYPES = (PHY_LAN8710, PHY_LAN8720, PHY_IP101, PHY_RTL8201, PHY_DP83848, PHY_KSZ8041,
              PHY_KSZ8081)


def _pin_id(p):
    # machine_pin_get_id: a Pin, or a GPIO number (ValueError "invalid pin" otherwise).
    from machine import Pin

    return Pin(p)._g.n


def LAN(id=None, *, mdc=None, mdio=None, reset=None, power=None, phy_addr, phy_type,
        spi=None, cs=None, int=None, ref_clk_mode=-1, ref_clk=None):
    # network_lan.c:get_lan: one interface, made once; the EMAC takes its pads for good.
    global _lan
    if _lan is not None:
        return _lan
    if id is not None and id != 0:
        raise ValueError("invalid LAN interface identifier")
    if not 0 <= phy_addr <= 0x1F:
        raise ValueError("invalid phy address")
    if phy_type not in _PHY_TYPES:
        raise ValueError("invalid phy type")
    if mdc is None or mdio is None:
        raise ValueError("mdc and mdio must be specified")
    pins = list(_RMII)
    for p in (mdc, mdio, reset, power, ref_clk):
        if p is not None:
            pins.append(_pin_id(p))
    if ref_clk is None:
        pins.append(_REF_CLK_DEFAULT)
    if power is not None:
        from machine import Pin

        Pin(power, Pin.OUT, value=1)  # the PHY powered before its reset, as the port does
    _lan = _LAN(pins)
    return _lan


def _link():
    """The number of the link in place (any interface), None when no link is up."""
    for nic in (WLAN._interfaces.get(STA_IF), _lan):
        if nic is not None and nic.isconnected() and nic._link is not None:
            return nic._link
    return None


def _ap_link(link):
    """Whether `link` is a station's association with the soft AP that still holds."""
    ap = WLAN._interfaces.get(AP_IF)
    return ap is not None and ap._active and link in ap._stations.values()


def _reachable():
    """Whether a peer can reach this device now: a station link, or a station on its AP."""
    ap = WLAN._interfaces.get(AP_IF)
    return _link() is not None or (ap is not None and ap._active and bool(ap._stations))


def _any_station_link():
    ap = WLAN._interfaces.get(AP_IF)
    if ap is not None and ap._active and ap._stations:
        return next(iter(ap._stations.values()))
    return None
