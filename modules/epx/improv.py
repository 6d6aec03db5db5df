# Improv Wi-Fi over the serial console (the protocol ESP Web Tools speaks once it has written
# the firmware): a device without WiFi settings answers it on UART0, the console, so the
# install page sets the WiFi right away. Packets (improv-wifi.com/serial):
#     "IMPROV" | version 1 | type | length | data | checksum (sum of every byte before, & 0xFF)
# Commands: 1 Wi-Fi settings, 2 current state, 3 device info, 4 scan. Settings that connect
# are written to config.txt (only ssid and password change), then the device reboots into
# them; settings that do not connect are reported and change nothing.
import asyncio
import sys

import micropython
import network
from micropython import const

from epx import config, confcmd, confstore, crash, log, loop

_HEADER = b"IMPROV"
_VERSION = const(1)
_MAX_DATA = const(255)

_CURRENT_STATE = const(1)
_ERROR_STATE = const(2)
_RPC = const(3)
_RPC_RESULT = const(4)

_READY = const(2)
_PROVISIONING = const(3)
_PROVISIONED = const(4)

_NO_ERROR = const(0)
_INVALID_RPC = const(1)
_UNKNOWN_RPC = const(2)
_UNABLE_TO_CONNECT = const(3)

_WIFI_SETTINGS = const(1)
_GET_STATE = const(2)
_GET_INFO = const(3)
_SCAN = const(4)

_CONNECT_MS = const(30000)  # an association that takes longer has failed
_POLL_MS = const(250)
_REBOOT_MS = const(1000)  # the answer goes out first

_packet = bytearray(len(_HEADER) + 3 + _MAX_DATA + 1)  # one packet in, header to checksum
_packet[:len(_HEADER)] = _HEADER
_out = bytearray(len(_HEADER) + 3 + _MAX_DATA + 2)  # one packet out, and its newline
_state = _READY
_info = ()
_busy = False


def start(info):
    """Answer Improv on the console: info is (firmware, version, chip/variant, device name)."""
    global _info
    _info = info
    # Every RPC packet holds 0x03, the console's interrupt character: read as data here.
    micropython.kbd_intr(-1)
    asyncio.create_task(_serve())
    log.info("improv: listening on the console")


async def _serve():
    reader = asyncio.StreamReader(sys.stdin.buffer)
    byte = bytearray(1)
    at = 0  # bytes of the packet so far
    size = 0
    while True:
        await reader.readinto(byte)
        b = byte[0]
        if at < len(_HEADER):  # find the header, whatever else the line carries
            if b == _HEADER[at]:
                at += 1
            else:
                at = 1 if b == _HEADER[0] else 0
            continue
        _packet[at] = b
        at += 1
        if at == len(_HEADER) + 3:
            size = at + b + 1
        if at == size:
            _take(memoryview(_packet)[:size])
            at = 0


def _take(p):
    n = len(_HEADER)
    if p[n] != _VERSION or p[n + 1] != _RPC:
        return  # only the device's own types otherwise: not for us
    if sum(p[:-1]) & 0xFF != p[-1]:
        return _send(_ERROR_STATE, (_INVALID_RPC,))
    data = p[n + 3:-1]
    if len(data) < 2 or data[1] != len(data) - 2:
        return _send(_ERROR_STATE, (_INVALID_RPC,))
    _send(_ERROR_STATE, (_NO_ERROR,))
    _rpc(data[0], data[2:])


def _rpc(command, args):
    if command == _GET_STATE:
        _send(_CURRENT_STATE, (_state,))
        if _state == _PROVISIONED:
            _result(_WIFI_SETTINGS, ())
    elif command == _GET_INFO:
        _result(_GET_INFO, _info)
    elif command == _SCAN:
        _scan()
    elif command == _WIFI_SETTINGS:
        _settings(args)
    else:
        _send(_ERROR_STATE, (_UNKNOWN_RPC,))


def _settings(args):
    global _busy
    try:
        ssid_len = args[0]
        ssid = bytes(args[1:1 + ssid_len]).decode()
        pass_len = args[1 + ssid_len]
        password = bytes(args[2 + ssid_len:2 + ssid_len + pass_len]).decode()
        if 2 + ssid_len + pass_len != len(args):
            raise ValueError
    except (IndexError, ValueError):  # UnicodeError is a ValueError
        return _send(_ERROR_STATE, (_INVALID_RPC,))
    old = confcmd.current()
    text = confcmd.edit(old, {"ssid": ssid, "password": password or None})
    # Only what these settings break counts: an unconfigured file may lack other keys.
    errs = [e for e in config.check(text) if e not in config.check(old)]
    if errs or _busy or _state == _PROVISIONED:
        for e in errs:
            log.error("improv: " + e)
        return _send(_ERROR_STATE, (_INVALID_RPC,))
    _busy = True
    _set_state(_PROVISIONING)
    asyncio.create_task(_connect(ssid, password, text))


async def _connect(ssid, password, text):
    global _busy
    wlan = network.WLAN(network.STA_IF)
    try:
        wlan.active(True)
        wlan.connect(ssid, password)
        start = loop.uptime_ms()
        while not wlan.isconnected() and loop.uptime_ms() - start < _CONNECT_MS:
            await asyncio.sleep_ms(_POLL_MS)
        connected = wlan.isconnected()
    except OSError as e:
        log.error("improv: connect: %s" % e)
        connected = False
    _busy = False
    if not connected:
        wlan.disconnect()
        log.error("improv: no link to %s within %d s" % (ssid, _CONNECT_MS // 1000))
        _send(_ERROR_STATE, (_UNABLE_TO_CONNECT,))
        return _set_state(_READY)
    confstore.write(config.FILE, text)
    log.info("improv: connected to %s; settings written" % ssid)
    _set_state(_PROVISIONED)
    _result(_WIFI_SETTINGS, ())
    loop.later(_REBOOT_MS, lambda: crash.reboot("WiFi settings from Improv"))


def _scan():
    wlan = network.WLAN(network.STA_IF)
    try:
        wlan.active(True)
        found = wlan.scan()
    except OSError as e:
        log.error("improv: scan: %s" % e)
        found = ()
    for ssid, _bssid, _channel, rssi, security, _hidden in found:
        try:
            _result(_SCAN, (ssid.decode(), str(rssi), "YES" if security else "NO"))
        except (UnicodeError, ValueError):  # a name Improv cannot carry: left out
            pass
    _result(_SCAN, ())


def _set_state(state):
    global _state
    _state = state
    _send(_CURRENT_STATE, (state,))


def _result(command, strings):
    """An RPC result: the command, then each string with its length."""
    data = bytearray((command, 0))
    for s in strings:
        s = s.encode()
        data.append(len(s))
        data.extend(s)
    if len(data) > _MAX_DATA:
        raise ValueError("improv: result too long")
    data[1] = len(data) - 2
    _send(_RPC_RESULT, data)


def _send(kind, data):
    n = len(_HEADER)
    _out[:n] = _HEADER
    _out[n] = _VERSION
    _out[n + 1] = kind
    _out[n + 2] = len(data)
    end = n + 3 + len(data)
    _out[n + 3:end] = bytes(data)
    _out[end] = sum(memoryview(_out)[:end]) & 0xFF
    _out[end + 1] = 10  # a newline: the console stays lines
    sys.stdout.buffer.write(memoryview(_out)[:end + 2])
