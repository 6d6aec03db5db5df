"""Improv Wi-Fi over the serial console (epx.improv), on the real firmware in the simulated
device: what ESP Web Tools does right after writing the firmware. The packets are built and
read here from the published format (improv-wifi.com/serial), not from the firmware's code:

    "IMPROV" | version 1 | type | length | data | checksum

the checksum being the low byte of the sum of every byte before it (as ESP Web Tools' client
computes it). The device's console input is its UART0 RX, the firmware's sys.stdin
(Device.console_write)."""

import re

from devconfig import config_text

AP_PASSWORD = "portal-pass-42"
HOME = {"ssid": "home-net", "password": "correct horse battery", "channel": 6, "rssi": -48}
NEIGHBOUR = {"ssid": "neighbour", "password": "not-yours-123", "channel": 11, "rssi": -80}

CURRENT_STATE, ERROR_STATE, RPC, RPC_RESULT = 1, 2, 3, 4
READY, PROVISIONING, PROVISIONED = 2, 3, 4
NO_ERROR, INVALID_RPC, UNKNOWN_RPC, UNABLE_TO_CONNECT = 0, 1, 2, 3
WIFI_SETTINGS, GET_STATE, GET_INFO, SCAN = 1, 2, 3, 4


def packet(kind, data):
    body = b"IMPROV" + bytes([1, kind, len(data)]) + bytes(data)
    return body + bytes([sum(body) & 0xFF])


def rpc(command, data=b""):
    return packet(RPC, bytes([command, len(data)]) + data)


def wifi_settings(ssid, password):
    ssid, password = ssid.encode(), password.encode()
    return bytes([len(ssid)]) + ssid + bytes([len(password)]) + password


def packets(stream):
    """Every well-formed Improv packet in a console byte stream: (type, data)."""
    found = []
    for m in re.finditer(rb"IMPROV", stream):
        at = m.start()
        head = stream[at:at + 9]
        if len(head) < 9:
            break
        end = at + 9 + head[8]
        if end >= len(stream):
            break
        assert head[6] == 1, head
        assert sum(stream[at:end]) & 0xFF == stream[end], stream[at:end + 1]
        found.append((head[7], stream[at + 9:end]))
    return found


def strings(result):
    """An RPC result's (command, [strings])."""
    command, size, data = result[0], result[1], result[2:]
    assert size == len(data)
    out = []
    while data:
        n = data[0]
        out.append(data[1:1 + n].decode())
        data = data[1 + n:]
    return command, out


class Console:
    """The device's console from a mark on: send a packet, wait for the answers."""

    def __init__(self, dev):
        self.dev = dev
        self.mark = dev.console_bytes_mark()

    def send(self, data):
        self.mark = self.dev.console_bytes_mark()
        assert self.dev.console_write(data)

    def wait(self, count, what="Improv packets"):
        return self.dev.wait_console_bytes(lambda b: (p := packets(b)) and len(p) >= count and p,
                                           since=self.mark, what=what)


def test_the_spec_example_is_what_this_test_sends():
    # improv-wifi.com/serial, "Send Wi-Fi settings": 01 1E 0C {MyWirelessAP} 10 {mysecurepassword}
    data = wifi_settings("MyWirelessAP", "mysecurepassword")
    assert bytes([WIFI_SETTINGS, len(data)]) + data == bytes.fromhex("011e0c") + b"MyWirelessAP" + (
        b"\x10mysecurepassword")
    assert packet(RPC, b"\x02\x00") == b"IMPROV\x01\x03\x02\x02\x00" + bytes([(sum(b"IMPROV") + 1 + 3 + 2 + 2) & 0xFF])


def unconfigured(device, broker, **kw):
    """A device that has its broker but no WiFi (`epx provision` without ssid): it answers
    Improv on its console from boot."""
    dev = device("bare", config=config_text(broker, "cellar", ssid=None, password=None, appassword=AP_PASSWORD),
                 **kw)
    dev.wait_boot(1)
    dev.wait_console(r"improv: listening on the console")
    dev.call("wifi.set", aps=[HOME, NEIGHBOUR])
    return dev


def test_state_info_and_wifi_settings_provision_the_device(device, broker, mqtt_watch):
    dev = unconfigured(device, broker)
    console = Console(dev)

    console.send(rpc(GET_STATE))
    assert console.wait(2) == [(ERROR_STATE, bytes([NO_ERROR])), (CURRENT_STATE, bytes([READY]))]

    console.send(rpc(GET_INFO))
    (_, error), (kind, result) = console.wait(2)
    assert error == bytes([NO_ERROR]) and kind == RPC_RESULT
    version = dev.wait_console(r"epx (\S+): ").group(1)  # the version the boot logged
    assert strings(result) == (GET_INFO, ["epx bare", version, "EPX_ESP32/esp32", "cellar"])

    console.send(rpc(SCAN))
    answers = console.wait(4)
    assert answers[0] == (ERROR_STATE, bytes([NO_ERROR]))
    assert [strings(r) for _, r in answers[1:]] == [
        (SCAN, ["home-net", "-48", "YES"]), (SCAN, ["neighbour", "-80", "YES"]), (SCAN, [])]

    # The right settings: provisioning, then provisioned with the RPC result (no URL).
    w = mqtt_watch(broker)
    console.send(rpc(WIFI_SETTINGS, wifi_settings(HOME["ssid"], HOME["password"])))
    assert console.wait(4) == [(ERROR_STATE, bytes([NO_ERROR])), (CURRENT_STATE, bytes([PROVISIONING])),
                               (CURRENT_STATE, bytes([PROVISIONED])), (RPC_RESULT, bytes([WIFI_SETTINGS, 0]))]
    # Asked again, the state says so, with the same result.
    console.send(rpc(GET_STATE))
    assert console.wait(3) == [(ERROR_STATE, bytes([NO_ERROR])), (CURRENT_STATE, bytes([PROVISIONED])),
                               (RPC_RESULT, bytes([WIFI_SETTINGS, 0]))]
    # The device reboots into the settings and reaches its broker over that network.
    dev.advance(2000)
    dev.wait_boot(2)
    config = dev.files()["config.txt"].decode()
    assert "ssid home-net\n" in config and "password correct horse battery\n" in config
    assert f"mqttbroker {broker.host}\n" in config  # the rest as it was
    dev.advance(13000)  # the network starts 12 s after boot
    w.wait_for("stat/cellar/LWT", lambda p: p == "Online", timeout=60, device=dev)


def test_wrong_settings_change_nothing_and_bad_packets_get_an_error(device, broker):
    dev = unconfigured(device, broker)
    before = dev.files()["config.txt"]
    console = Console(dev)

    # A password the network refuses: unable to connect, back to ready, nothing written.
    console.send(rpc(WIFI_SETTINGS, wifi_settings(HOME["ssid"], "wrong password!")))
    assert console.wait(2)[1] == (CURRENT_STATE, bytes([PROVISIONING]))
    dev.advance(31000)
    assert console.wait(4)[2:] == [(ERROR_STATE, bytes([UNABLE_TO_CONNECT])), (CURRENT_STATE, bytes([READY]))]
    assert dev.files()["config.txt"] == before

    # A packet with a wrong checksum; a length that is not the data's; an unknown command;
    # a password the config refuses (WPA2: 8-63 characters): each gets its error.
    bad = bytearray(rpc(GET_STATE))
    bad[-1] ^= 0xFF
    ok = (ERROR_STATE, bytes([NO_ERROR]))
    for sent, answers in ((bytes(bad), [(ERROR_STATE, bytes([INVALID_RPC]))]),
                          (packet(RPC, bytes([GET_STATE, 5])), [(ERROR_STATE, bytes([INVALID_RPC]))]),
                          (rpc(0x7E), [ok, (ERROR_STATE, bytes([UNKNOWN_RPC]))]),
                          (rpc(WIFI_SETTINGS, wifi_settings(HOME["ssid"], "short")),
                           [ok, (ERROR_STATE, bytes([INVALID_RPC]))])):
        console.send(b"log noise IMP" + sent)
        assert console.wait(len(answers)) == answers, sent
    assert dev.files()["config.txt"] == before
    # Still answering.
    console.send(rpc(GET_STATE))
    assert console.wait(2)[-1] == (CURRENT_STATE, bytes([READY]))
