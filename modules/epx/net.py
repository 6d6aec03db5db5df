# The network link: WiFi station, or the board's wired LAN when ssid is "(wired)". The
# port's WiFi driver retries by itself while a connection is requested, and status() keeps
# the last failure's reason until an IP is got: so an attempt is judged by time alone
# (no link within ATTEMPT_MS), never by status(), which only names the likely cause. Then
# a fresh connect after a backoff with jitter; lost links are counted in NVS, and the
# device reboots after REBOOT_S without a link.
import network

from epx import config, crash, log, loop, radio

WIRED = "(wired)"


SSID = config.key("ssid", config.ssid, doc="WiFi network||MyWiFi|The network's name as a phone lists it")
PASSWORD = config.key("password", config.wifi_password, None, "WiFi password|||8-63 characters (WPA2); an open network has none (config.txt: None)", secret=True)
CHANNEL = radio.channel_key("channel", None, doc="WiFi channel||6|Where the scan starts; empty: all channels")
REBOOT_S = config.key("netreboot", config.int_range(60, 86400), 600, "Reboot without WiFi after|s|600|60-86400")

_POLL_MS = const(500)
_ATTEMPT_MS = const(60000)  # an association that takes longer has failed
_FIRST_RETRY_MS = const(1000)
_MAX_RETRY_MS = const(60000)

sm = loop.StateMachine("net", {
    "off": ("connecting",),
    "connecting": ("up", "waiting"),
    "up": ("connecting",),
    "waiting": ("connecting",),
}, "off")

nic = None
problem = None  # why the last attempt failed
_retry_ms = _FIRST_RETRY_MS
_down_since = 0  # uptime ms when the link was last lost (or start)
_held = False  # no reboot for want of a network meanwhile
_nv = None


def up():
    return sm.state == "up"


def ip():
    return nic.ifconfig()[0] if up() else None


def lost():
    """Lost links since the counters were reset (kept in NVS)."""
    return _nv.get_int("netlost", 0)


def start(reboot=True):
    """Bring the link up and keep it up; reboot after netreboot s without it unless told
    not to (safe mode: a reboot cannot mend a config)."""
    global nic, _nv, _down_since
    if nic is not None:
        return
    from epx.nvram import NVRAM

    _nv = NVRAM("epx")
    try:
        nic = _wired() if SSID.value == WIRED else _wifi()
    except ValueError as e:  # no network on this board: stay reachable over nothing, say why
        return log.error("net: %s" % e)
    _down_since = loop.uptime_ms()
    if reboot:
        loop.every(1000, _check_reboot)
    _connect()


def _wifi():
    radio.set_country()
    w = network.WLAN(network.STA_IF)
    w.active(True)
    if CHANNEL.value is not None:
        try:
            w.config(channel=CHANNEL.value)
        except radio.ERRORS as e:  # where a scan starts, no more: it covers every channel
            log.warn("net: the radio refused channel %d (%s): scanning them all" % (
                CHANNEL.value, e))
    return w


def _wired():
    import board
    from machine import Pin

    spec = board.LAN
    if spec is None:
        raise ValueError("ssid %s: board %s has no wired LAN" % (WIRED, board.NAME))
    args = {}
    for k, v in spec.items():
        if k in ("mdc", "mdio", "power", "ref_clk"):
            v = Pin(v)
        elif k == "phy_type":
            v = getattr(network, v)
        elif k == "ref_clk_mode":
            v = getattr(Pin, v)
        args[k] = v
    lan = network.LAN(**args)
    lan.active(True)
    return lan


def _connect():
    if SSID.value != WIRED:
        try:
            nic.connect(SSID.value, PASSWORD.value)
        except radio.ERRORS as e:
            sm.go("connecting")
            return _retry("connect: %s" % e)
    _connecting()
    # Log lines come after the timers they announce: a test that reads one may move the
    # clock at once.
    log.info("net: connecting to %s" % SSID.value)


def _connecting():
    # Also after a lost link: the driver is reassociating on its own (a beacon timeout, a
    # restarted access point, another channel).
    sm.go("connecting")
    sm.every(_POLL_MS, _poll_connecting)
    sm.timer(_ATTEMPT_MS, lambda: _retry("no link after %d s%s" % (_ATTEMPT_MS // 1000, _cause())))


def _cause():
    if SSID.value == WIRED:
        return ""
    s = nic.status()
    if s == network.STAT_WRONG_PASSWORD:
        return ": wrong password?"
    if s == network.STAT_NO_AP_FOUND:
        return ": no access point %s" % SSID.value
    return " (status %d)" % s


def _poll_connecting():
    global _retry_ms
    if nic.isconnected():
        _retry_ms = _FIRST_RETRY_MS
        sm.go("up")
        sm.every(_POLL_MS, _poll_up)
        log.info("net: up, %s" % nic.ifconfig()[0])


def _poll_up():
    global _down_since
    if not nic.isconnected():
        _down_since = loop.uptime_ms()
        _nv.set_int("netlost", lost() + 1)
        _connecting()
        log.warn("net: link lost")


def _retry(why):
    global _retry_ms, problem
    problem = why
    if SSID.value != WIRED:
        try:
            nic.disconnect()
        except radio.ERRORS:
            pass
    delay = _retry_ms
    _retry_ms = min(_retry_ms * 2, _MAX_RETRY_MS)
    sm.go("waiting")
    sm.timer(delay, _connect, jitter_ms=delay // 2)
    log.warn("net: %s; retry in %d s" % (why, delay // 1000))


def hold_reboot(on):
    """While on (the fallback access point serves), no reboot for want of a network; after,
    the time counts afresh."""
    global _held, _down_since
    _held = on
    _down_since = loop.uptime_ms()


def _check_reboot():
    if sm.state != "up" and not _held and loop.uptime_ms() - _down_since >= REBOOT_S.value * 1000:
        crash.reboot("no network for %d s" % REBOOT_S.value)
