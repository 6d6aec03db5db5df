"""`epx cmd`: a signed diagnostic from the host to a simulated `bare` device through a real
mosquitto; the reply comes back from stat/<n>/Log."""

import pytest

from epx import cli, diag
from epx.errors import EpxError

NAME = "bc"
KEY = "k3y with spaces"
START_MS = 12000
HARD_RESET = 2  # app starts net and MQTT this long after boot


@pytest.fixture
def bare(device, broker, mqtt_watch):
    keys = {"ssid": "epx-sim", "password": "None", "mqttbroker": broker.host,
            "mqttport": broker.port, "mqttname": NAME, "watchdog": 0, "ota_key": KEY}
    w = mqtt_watch(broker)
    dev = device("bare", config="".join(f"{k} {v}\n" for k, v in keys.items()))
    dev.wait_console(r"epx .*: power on")
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("boot "), device=dev)
    return dev, w


def test_sign_matches_the_device_scheme():
    assert diag.sign("k", "dev", "reboot", 7) == (
        "reboot 7 " + __import__("hmac").new(b"k", b"dev reboot 7", "sha256").hexdigest())
    assert diag.sign("k", "dev", "reboot", 2**64 - 1).startswith("reboot 18446744073709551615 ")
    for counter in (-1, 2**64):
        with pytest.raises(EpxError, match=r"0..2\*\*64-1"):
            diag.sign("k", "dev", "reboot", counter)


def test_cmd_reboots_the_device_and_a_wrong_key_is_refused(bare, broker, capsys):
    dev, w = bare
    address = f"{broker.host}:{broker.port}"
    assert cli.main(["cmd", "--broker", address, "--name", NAME, "stats"]) == 0
    assert capsys.readouterr().out == "connlost events net 0 mqtt 0\n"

    # a refusal: the device says which command it refused and why; `epx cmd` exits 1 with it
    reply = diag.send(broker.host, broker.port, NAME, "reboot", key="wrong key")
    assert reply == "reboot: refused: bad signature"
    assert cli.main(["cmd", "--broker", address, "--name", NAME, "--key", "wrong key", "reboot"]) == 1
    assert capsys.readouterr().err == f"epx: {NAME}: reboot: refused: bad signature\n"
    # an empty key ($OTA_KEY unset in the shell) is the user's mistake, not an unsigned command
    assert cli.main(["cmd", "--broker", address, "--name", NAME, "--key", "", "reboot"]) == 1
    assert capsys.readouterr().err == "epx: --key is empty (is $OTA_KEY set?)\n"
    assert len(dev.boots) == 1

    assert cli.main(["cmd", "--broker", address, "--name", NAME, "--key", KEY, "reboot"]) == 0
    assert capsys.readouterr().out == "rebooting\n"
    dev.advance(1000)
    assert dev.wait_boot(2, timeout=20)["reset_cause"] == HARD_RESET  # machine.reset()
    dev.wait_console(r"epx .*: hard reset", boot=2, timeout=20)
    m = w.mark()
    dev.advance(START_MS)
    w.wait_for(f"stat/{NAME}/Log", lambda p: p.startswith("reboot: command reboot"), since=m,
               timeout=20, device=dev)

    # the counter it used (Unix time) is now the last accepted: an older one is a replay
    reply = diag.send(broker.host, broker.port, NAME, "reboot", key=KEY, counter=5)
    assert "refused: replayed: counter 5, last accepted " in reply
    assert len(dev.boots) == 2


def test_cmd_without_a_device_times_out(broker, mqtt_watch):
    """A name that never connected is no such device; one that did and is gone is offline."""
    with pytest.raises(EpxError, match="nobody: no such device on .*no stat/nobody/LWT"):
        diag.send(broker.host, broker.port, "nobody", "stats", timeout=0.5)
    mqtt_watch(broker).publish("stat/gone/LWT", "Offline", qos=1, retain=True)
    with pytest.raises(EpxError, match=r"gone: no reply on stat/gone/Log within 0.5 s \(the device is Offline\)"):
        diag.send(broker.host, broker.port, "gone", "stats", timeout=0.5)


def test_a_year_of_signed_commands_holds_no_more_nvs_handles(bare):
    # The port's esp32.NVS never frees its IDF handle: a handle opened per command would
    # grow with uptime until nvs_open fails (ESP_ERR_NO_MEM). A year of a daily signed
    # diagnostic (each takes the replay counter, and resetstats writes the counts) must
    # leave the count where the first few left it.
    dev, w = bare

    def commands(first, last):
        replies = f"stat/{NAME}/Log"
        for counter in range(first, last + 1):
            m = w.mark()
            w.publish(f"cmnd/{NAME}/OTA", diag.sign(KEY, NAME, "resetstats", counter))
            w.wait_for(replies, lambda p: p == "stats reset", since=m, device=dev)
        return dev.call("state")["nvs_handles"]

    early = commands(1, 5)
    for first in range(6, 366, 60):
        assert commands(first, min(first + 59, 365)) == early
