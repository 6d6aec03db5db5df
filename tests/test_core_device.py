"""The core's crash path, watchdog and safe mode in a simulated device (tests/firmware/
cfault: the core and an appliance that fails as config.txt says), against a real
mosquitto: what a subscriber sees on stat/<n>/Log after the device recovers."""

import re
from pathlib import Path

import pytest

from devconfig import config_text

NAME = "cf"
NETWORK_MS = 12000  # app starts net and MQTT this long after boot
EXIT_RESET, EXIT_WDT = 10, 11
HARD_RESET, WDT_RESET = 2, 3
LOG = f"stat/{NAME}/Log"


def config(broker, **extra):
    return config_text(broker, NAME, **extra)


def make(device, broker, text=None, files=None, **keys):
    files = dict(files or {}, **{"config.txt": text if text is not None else config(broker, **keys)})
    return device("cfault", files=files)


def network_now(dev, boot):
    """Skip the start-up delay of boot `boot`: the network starts at once."""
    dev.wait_console(r"epx .*: ", boot=boot)
    dev.advance(NETWORK_MS)


def logs(watch, since=0):
    return [p.decode() for t, p, _ in watch.messages[since:] if t == LOG]


@pytest.mark.parametrize("fault", ["raise", "task"])
def test_an_exception_is_published_once_after_the_reboot(device, broker, mqtt_watch, fault):
    w = mqtt_watch(broker)
    dev = make(device, broker, fault=fault)
    dev.wait_console(f"cfault setup: {fault}", boot=1)
    dev.advance(1000)
    first = dev.wait_exit(1, timeout=20)
    assert first["exit"] == EXIT_RESET
    assert dev.wait_boot(2)["reset_cause"] == HARD_RESET
    network_now(dev, 2)
    _, trace, _ = w.wait_for(LOG, lambda p: p.startswith("exception: "), device=dev)
    assert "RuntimeError: fault injected" in trace and "_raise" in trace
    # The uptime in the reason counts the 1 s advanced plus however long the host took.
    assert re.match(r"reboot: exception RuntimeError: fault injected \(after \d+ s\)",
                    w.wait_for(LOG, lambda p: p.startswith("reboot: "), device=dev)[1])
    assert w.wait_for(LOG, lambda p: p.startswith("boot "), device=dev)[1].endswith(": hard reset")
    # Published, so not again: a power cycle reports only its own boot.
    dev.wait_console("reported 3 messages", boot=2)
    assert dev.nvs()["epx"]["unreported"] == ["i32", 0]
    mark = w.mark()
    dev.power_cycle()
    network_now(dev, 3)
    w.wait_for(LOG, lambda p: p.endswith(": power on"), since=mark, device=dev)
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", since=mark, device=dev)
    assert [p for p in logs(w, mark) if not p.startswith("boot ")] == []
    assert len(dev.boots) == 3


def test_a_stuck_loop_ends_in_a_watchdog_reset(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = make(device, broker, fault="hang")
    dev.wait_console("cfault: hanging", boot=1)
    dev.advance(30000)  # longer than the start-up grace plus the watchdog's 15 s
    assert dev.wait_exit(1)["exit"] == EXIT_WDT
    assert dev.wait_boot(2)["reset_cause"] == WDT_RESET
    dev.wait_console(r"epx .*: watchdog", boot=2)
    network_now(dev, 2)
    assert w.wait_for(LOG, lambda p: p.startswith("boot "), device=dev)[1].endswith(": watchdog")


def test_a_boot_stuck_before_the_loop_is_reset_too(device, broker):
    dev = make(device, broker, fault="setuphang")
    dev.wait_console("cfault: hanging", boot=1)
    dev.advance(26000)  # the start-up grace (10 s) plus 15 s: the loop never turned
    assert dev.wait_exit(1)["exit"] == EXIT_WDT
    dev.wait_console(r"epx .*: watchdog", boot=2)


def test_may_block_lets_a_declared_blocking_call_through(device, broker):
    dev = make(device, broker, fault="mayblock")
    dev.wait_console("cfault setup: mayblock")
    dev.advance(15000)  # past the start-up grace: the watchdog is down to 15 s
    dev.wait_console("cfault: blocking")
    dev.call("clock.scale", factor=20)  # the 40 s block takes 2 s
    dev.wait_console("cfault: blocked 40 s", timeout=20)
    assert len(dev.boots) == 1


def test_may_block_is_bounded(device, broker):
    dev = make(device, broker, fault="overblock")
    dev.wait_console("cfault setup: overblock")
    dev.advance(15000)
    dev.wait_console("cfault: blocking")
    dev.call("clock.scale", factor=20)  # 60 s blocked, 20 s allowed: 20 + 15 s, then reset
    assert dev.wait_exit(1, timeout=20)["exit"] == EXIT_WDT
    assert "blocked 60 s" not in dev.output()



def test_recursion_past_the_esp32_tasks_stack_is_a_reported_crash(device, broker, mqtt_watch):
    """An appliance's recursion 100 deep, about 27 KB of C stack on this host (which holds
    80000 bytes), overflows the ESP32's 16 KB task (ports/esp32/main.c, mpconfigport.h):
    the port's RuntimeError, a reboot and its report after it, as any exception; then the
    device runs on. The trace is longer than a report: its start and its end are sent, the
    exception with it."""
    w = mqtt_watch(broker)
    dev = make(device, broker, fault="recurse")
    dev.wait_console("cfault setup: recurse", boot=1)
    dev.advance(1000)
    assert dev.wait_exit(1, timeout=20)["exit"] == EXIT_RESET
    network_now(dev, 2)
    _, trace, _ = w.wait_for(LOG, lambda p: p.startswith("exception: "), device=dev)
    assert trace.startswith("exception: Traceback") and "_recurse" in trace
    assert trace.endswith("\nRuntimeError: maximum recursion depth exceeded") and len(trace) < 2100
    assert re.match(r"reboot: exception RuntimeError: maximum recursion depth exceeded",
                    w.wait_for(LOG, lambda p: p.startswith("reboot: "), device=dev)[1])
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    assert 0 < dev.call("state")["stack_own"] < 16 * 1024 - 1024


def test_a_broken_config_starts_safe_mode_still_on_mqtt(device, broker, mqtt_watch):
    w = mqtt_watch(broker)
    dev = make(device, broker, text=config(broker, fault="raise", watchdog="None", colour="blue"))
    dev.wait_console(r"safe mode: config.txt broken", boot=1)
    dev.advance(NETWORK_MS)
    _, text, _ = w.wait_for(LOG, lambda p: p.startswith("safe mode: "), device=dev)
    assert text == ("safe mode: config.txt broken; "
                    "config.txt:7: watchdog: 'None' is not a boolean (0/1/on/off/true/false)")
    assert w.wait_for(LOG, lambda p: p.startswith("config: "), device=dev)[1] == \
        "config: config.txt:8: colour: unknown key (ignored)"
    w.wait_for(f"stat/{NAME}/LWT", lambda p: p == "Online", device=dev)
    # The appliance never started: its faulty timer never ran.
    assert "cfault setup" not in dev.output()
    dev.advance(5000)
    assert len(dev.boots) == 1


@pytest.mark.parametrize("where", ["setup", "import"])
def test_a_boot_loop_starts_safe_mode(device, broker, mqtt_watch, where):
    w = mqtt_watch(broker)
    files = {"import.fault": "x"} if where == "import" else {}
    dev = make(device, broker, files=files, fault="setup" if where == "setup" else "none")
    for n in (1, 2, 3):
        assert dev.wait_exit(n, timeout=20)["exit"] == EXIT_RESET
    dev.wait_console(r"safe mode: boot loop: 3 resets within 120 s of boot", boot=4)
    network_now(dev, 4)
    w.wait_for(LOG, lambda p: p == "safe mode: boot loop: 3 resets within 120 s of boot", device=dev)
    _, trace, _ = w.wait_for(LOG, lambda p: p.startswith("exception: "), device=dev)
    assert ("RuntimeError: setup failed" if where == "setup" else "ImportError: cfault cannot import") in trace
    assert len(dev.boots) == 4
    # Two minutes up in safe mode count as a good boot: the next reset tries the appliance.
    dev.advance(120000)
    dev.wait_console("a good boot", boot=4)
    assert (Path(dev.folder) / "rtc.bin").read_bytes()[:4] == b"epx\0"


def test_the_bare_profile_boots_to_mqtt(device, broker, mqtt_watch):
    """The template profile: the core alone comes up, reports its boot, and stays up."""
    w = mqtt_watch(broker)
    dev = device("bare", files={"config.txt": config(broker, mqttname="bare")})
    network_now(dev, 1)
    w.wait_for("stat/bare/LWT", lambda p: p == "Online", device=dev)
    assert w.wait_for("stat/bare/Log", device=dev)[1].endswith(": power on")
    w.wait_for("stat/bare/Uptime", device=dev)
    dev.wait_console("reported 1 messages")
    assert "Traceback" not in dev.output() and " E " not in dev.output()
    assert len(dev.boots) == 1


def test_the_core_runs_across_the_ticks_wrap_around(device, broker, mqtt_watch):
    """Booted 5 s before ticks_ms wraps (2**30 ms, as on the ESP32): net and MQTT start after
    the wrap, and timers set before it (the 120 s good-boot mark, Uptime) still land."""
    w = mqtt_watch(broker)
    dev = device("bare", files={"config.txt": config(broker, mqttname="bare")}, start=False)
    dev.t_us = (2**30 - 5000) * 1000
    dev.start()
    network_now(dev, 1)
    w.wait_for("stat/bare/LWT", lambda p: p == "Online", device=dev)
    for _ in range(4):
        dev.advance(30000)
    dev.wait_console("up 120 s: a good boot")
    w.wait_for("stat/bare/Uptime", lambda p: p == "2", device=dev)
    assert dev.call("clock.now") // 1000 > 2**30  # the clock did pass the wrap
    assert "Traceback" not in dev.output() and len(dev.boots) == 1


def test_the_cpu_runs_at_the_configured_clock(device, broker):
    """80 MHz unless config says otherwise (machine.freq, as the original's boot did); a
    clock the chip cannot run is a config error naming its line."""
    dev = make(device, broker)
    dev.wait_console(r"cpu: 80 MHz", boot=1)
    fast = make(device, broker, cpufreq=240)
    fast.wait_console(r"cpu: 240 MHz", boot=1)
    odd = make(device, broker, cpufreq=100)
    odd.wait_console(r"config.txt:\d+: cpufreq: '100' is not one of 80, 160, 240", boot=1)
    odd.wait_console(r"cpu: 80 MHz", boot=1)
    # machine.freq takes 40, but the ESP32's WiFi stops below 80 MHz
    # (micropython/micropython#18427): refused, the device stays reachable
    slow = make(device, broker, cpufreq=40)
    slow.wait_console(r"config.txt:\d+: cpufreq: '40' is not one of 80, 160, 240", boot=1)
    slow.wait_console(r"cpu: 80 MHz", boot=1)
