# The fallback access point: with a broken config.txt (safe mode) at once, else after
# apfallback minutes without the broker (WiFi up or not), the device opens its own WPA2
# access point (its name from mqttname and the MAC's tail, its password appassword) with a
# DNS responder that answers every name with the device and the setup page (epx.portal).
# The station keeps trying the old network meanwhile; once the broker is back, the access
# point closes (not in safe mode: the config still has to be mended).
# The last good appassword is kept in NVS: a broken config.txt that lost its own still
# opens the access point, with the password the device had.
import network
from micropython import const

from epx import config, log, loop
from epx.nvram import NVRAM

_CHECK_MS = const(5000)
_NV_PASSWORD = "appassword"


def _password(text):
    value = config.wifi_password(text)
    if value is None or len(value) > 63:
        raise ValueError("the access point's password is 8-63 printable ASCII characters")
    return value


FALLBACK_MIN = config.key("apfallback", config.int_range(0, 1440), 5, "Setup access point after|min|5|Without the broker this long (WiFi up or not), the setup access point opens; 0: never")
PASSWORD = config.key("appassword", _password, None, "Access point password|||The setup access point's WPA2 password, 8-63 characters", secret=True)

_ap = None  # the soft AP interface while it is open
_dns = None
_portal = None
_down_ms = None  # uptime when the network was last seen down (None: up)


def is_open():
    return _ap is not None


def password(broken):
    """The access point's password: appassword, else when config.txt is broken the last
    one it had (None: no access point)."""
    nv = NVRAM("epx")
    if PASSWORD.value is not None:
        nv.set_str(_NV_PASSWORD, PASSWORD.value)  # writes only a change
        return PASSWORD.value
    return nv.get_str(_NV_PASSWORD) if broken else None


def start(name, up, submit, configured, held=None):
    """Watch the broker: up() says whether it is reached; open the access point at once when
    config.txt is broken (safe mode; not configured: no usable network keys), else after
    apfallback minutes without it. submit(text) takes a checked config.txt; held(True/False)
    is told when the access point opens and closes (reboots for want of a network or broker
    wait meanwhile)."""
    secret = password(config.safe_mode)
    if secret is None:  # an error only where the access point was needed now
        why = "ap: no appassword in %s: no access point" % config.FILE
        return log.info(why) if configured and not config.safe_mode else log.error(why)
    state = (name, up, submit, configured, held, secret)
    if config.safe_mode:
        return _open(state)
    if FALLBACK_MIN.value:
        loop.every(_CHECK_MS, lambda: _check(state))


def _check(state):
    global _down_ms
    up = state[1]
    if up():
        _down_ms = None
        if _ap is not None:
            _close(state)
        return
    now = loop.uptime_ms()
    if _down_ms is None:
        _down_ms = now
    elif _ap is None and now - _down_ms >= FALLBACK_MIN.value * 60000:
        _open(state)


def essid(name, mac):
    """The access point's name: mqttname (or epx) and the MAC's last two bytes."""
    return "%s-%02x%02x" % ((name or "epx")[:27], mac[4], mac[5])


def _open(state):
    global _ap, _dns, _portal
    name, _, submit, configured, held, secret = state
    from epx import dnsd, portal

    sta = network.WLAN(network.STA_IF)
    sta.active(True)  # scans need the station, and it keeps trying the old network
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    ap.config(essid=essid(name, ap.config("mac")), password=secret,
              authmode=network.AUTH_WPA2_PSK, max_clients=2)
    _ap = ap
    ip = ap.ifconfig()[0]
    _dns = dnsd.Responder(ip)
    _portal = portal.Portal(_scanner(sta), submit, secret if configured else None,
                            ap.config("essid"), sta.config("mac"), ap.config("mac"))
    loop.task(_portal.start())
    if held is not None:
        held(True)
    log.info("ap: %s open, portal on http://%s/" % (ap.config("essid"), ip))


def _scanner(sta):
    def scan():
        nets = {}
        try:
            found = sta.scan()
        except OSError as e:
            log.warn("ap: scan: %s" % e)
            return []
        for ssid, _, _, rssi, auth, _ in found:
            try:
                ssid = ssid.decode()
            except UnicodeError:
                continue
            if ssid and (ssid not in nets or nets[ssid][1] < rssi):
                nets[ssid] = (ssid, rssi, auth == network.AUTH_OPEN)
        return sorted(nets.values(), key=lambda n: -n[1])[:16]

    return scan


def _close(state):
    global _ap, _dns, _portal
    _portal.close()
    _dns.close()
    _ap.active(False)
    _ap = _dns = _portal = None
    held = state[4]
    if held is not None:
        held(False)
    log.info("ap: closed, the broker is back")
