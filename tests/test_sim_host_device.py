"""The simulated device's host side (bootloader loop, resets, world, console, ESP-NOW
medium) driven by a stand-in firmware (epx.sim.stub) that speaks the control protocol."""

import os

import pytest

from epx.sim import appimage, device as sim, stub
from epx.sim.device import SimTimeout
from epx.sim.medium import Medium


@pytest.fixture(scope="module")
def stub_app():
    return appimage.build(stub.executable(), "stub-1")


def test_first_boot(device, stub_app):
    dev = device(stub_app, config="unit L\n")
    boot = dev.wait_boot(1)
    assert (boot["slot"], boot["state"], boot["reset_cause"]) == ("ota_0", "valid", sim.PWRON_RESET)
    assert boot["hello"]["mac"] == dev.mac
    dev.wait_console(r"config 'unit L\\n'")
    assert os.access(os.path.join(dev.folder, "app-ota_0"), os.X_OK)


@pytest.mark.parametrize("code, cause", [
    (sim.EXIT_RESET, sim.HARD_RESET), (sim.EXIT_WDT, sim.WDT_RESET),
    (sim.EXIT_PANIC, sim.HARD_RESET), (sim.EXIT_SOFT, sim.SOFT_RESET), (77, sim.HARD_RESET)])
def test_exit_codes_become_reset_causes(device, stub_app, code, cause):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.post("stub.exit", code=code)
    boot = dev.wait_boot(2)
    assert (boot["reset_cause"], boot["wake_reason"]) == (cause, 0)
    assert dev.wait_exit(1)["exit"] == code
    dev.wait_console(rf"stub boot 2 cause {cause} wake 0")


def test_a_signal_is_a_panic(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.post("stub.exit", code=0, signal=11)
    assert dev.wait_boot(2)["reset_cause"] == sim.HARD_RESET
    assert dev.wait_exit(1)["exit"] == -11


def test_deep_sleep_advances_the_clock(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.advance(5000)
    assert dev.call("clock.now") == 5_000_000
    dev.post("stub.exit", code=sim.EXIT_DEEPSLEEP, deepsleep_ms=3_600_000)
    boot = dev.wait_boot(2)
    assert (boot["reset_cause"], boot["wake_reason"]) == (sim.DEEPSLEEP_RESET, sim.TIMER_WAKE)
    assert boot["ticks_start_ms"] == 3_605_000
    assert not os.path.exists(os.path.join(dev.folder, "run", "deepsleep.json"))


def test_power_cycle_clears_rtc_memory(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.call("stub.rtc", data="kept")
    dev.post("stub.exit", code=sim.EXIT_RESET)
    dev.wait_boot(2)
    dev.wait_console(r"rtc b'kept'", boot=2)
    dev.power_cycle()
    assert dev.wait_boot(3)["reset_cause"] == sim.PWRON_RESET
    dev.wait_console(r"rtc None", boot=3)


def test_world_survives_reboots_and_pin_edges_are_recorded(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.call("pin.set", pin=4, value=1)
    for value in (1, 0, 1):
        dev.call("stub.pin", pin=12, value=value)
    dev.post("stub.exit", code=sim.EXIT_WDT)
    dev.wait_boot(2)
    dev.wait_console(r'world pins \{"4": 1\}', boot=2)
    assert dev.call("pin.get", pin=4) == 1
    dev.wait_pin(12, 1)
    assert [(v, b) for v, _, b in dev.pin_history(12)] == [(1, 1), (0, 1), (1, 1)]
    assert dev.pins[12] == 1


def test_ota_rollback_when_the_new_app_resets_unconfirmed(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.install("ota_1", appimage.build(stub.executable(), "stub-2"))
    dev.post("stub.exit", code=sim.EXIT_RESET)
    boot = dev.wait_boot(2)
    assert (boot["slot"], boot["state"], boot["version"]) == ("ota_1", "pending_verify", "stub-2")
    dev.post("stub.exit", code=sim.EXIT_RESET)  # resets before marking itself valid
    boot = dev.wait_boot(3)
    assert (boot["slot"], boot["state"], boot["version"]) == ("ota_0", "valid", "stub-1")
    assert "otadata[1] pending_verify -> aborted" in boot["actions"]


def test_ota_kept_when_marked_valid(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.install("ota_1", appimage.build(stub.executable(), "stub-2"))
    dev.post("stub.exit", code=sim.EXIT_RESET)
    assert dev.wait_boot(2)["state"] == "pending_verify"
    dev.call("stub.mark_valid")
    dev.post("stub.exit", code=sim.EXIT_RESET)
    boot = dev.wait_boot(3)
    assert (boot["slot"], boot["state"]) == ("ota_1", "valid")


def test_boot_log_has_one_line_per_boot(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.post("stub.exit", code=sim.EXIT_RESET)
    dev.wait_boot(2)
    dev.power_cycle()
    dev.wait_exit(2)
    import json
    lines = [json.loads(l) for l in open(os.path.join(dev.folder, "boot.log"))]
    assert [(l["boot"], l["exit"]) for l in lines[:2]] == [(1, sim.EXIT_RESET), (2, -9)]


def test_repl_exit_ends_the_run_and_waits_fail_fast(device, stub_app):
    dev = device(stub_app)
    dev.wait_boot(1)
    dev.call("stub.print", text="last words")
    dev.post("stub.exit", code=sim.EXIT_REPL)
    with pytest.raises(SimTimeout, match=r"(?s)REPL.*last words"):
        dev.wait_boot(2, timeout=30)


def test_console_timeout_shows_the_last_lines(device, stub_app):
    dev = device(stub_app)
    dev.wait_console("rtc")
    with pytest.raises(SimTimeout, match=r"(?s)never printed.*stub boot 1"):
        dev.wait_console("never printed", timeout=0.2)


def test_call_errors_are_reported(device, stub_app):
    dev = device(stub_app)
    with pytest.raises(Exception, match="unknown op"):
        dev.call("no.such.op")


def test_no_bootable_app_ends_the_run(device, tmp_path):
    dev = device(b"\xff" * 64)
    with pytest.raises(SimTimeout, match="no bootable app"):
        dev.wait_boot(1)


def test_espnow_between_two_devices(device, stub_app):
    air = Medium(seed=1)
    a = device(stub_app, name="a", medium=air)
    b = device(stub_app, name="b", medium=air)
    a.wait_boot(1), b.wait_boot(1)
    a.call("stub.espnow", peer=b.mac, text="hello b")
    b.wait_console(rf"espnow from {a.mac}: hello b")
    b.call("stub.espnow", peer="ff:ff:ff:ff:ff:ff", text="to all")
    a.wait_console(rf"espnow from {b.mac}: to all")
    air.loss = 1.0
    a.call("stub.espnow", peer=b.mac, text="lost")
    air.loss = 0.0
    air.channels[b.mac] = 6
    a.call("stub.espnow", peer=b.mac, text="wrong channel", channel=1)
    outcomes = [f[3] for f in air.frames]
    assert outcomes == ["delivered", "delivered", "lost", "channel"]
