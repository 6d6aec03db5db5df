"""The switch firmware on a simulated board against a real mosquitto: programs with presses,
long presses, toggles and bounces; commands in every spelling and garbage; program upload;
outputs kept through resets (no glitch on the 74HC595 latch) and power cycles."""

import json
import os
import signal
import subprocess
import sys

import pytest

from epx import diag, ota
from epx.paths import BUILD, ROOT
from epx.sim import appimage

from appliance import sync
from devconfig import config_text

NAME = "sw"
START_MS = 12000  # app starts net and MQTT this long after boot
BOOT_LOOP_WINDOW_MS = 121000  # resets within 120 s of boot count towards a boot loop
KEY = "k3y"
ESP32_HEAP = 200 * 1024  # about an ESP32 without PSRAM (110 KB) in 64-bit objects
DIRECT4_IN = (26, 34, 33, 35)  # active low
DIRECT4_OUT = (17, 16, 32, 12)
CHAIN_595 = {"ser": 13, "clk": 14, "latch": 15, "latch_pullup": True}
CHAIN_165 = {"clk": 14, "load": 32, "qh": 16}


def config(broker, driver, **extra):
    return config_text(broker, NAME, **{"watchdog": 0, "driver": driver, "ota_key": KEY, **extra})


def topic(kind, name):
    return f"{kind}/{NAME}/{name}"


@pytest.fixture
def switch(device, broker, mqtt_watch):
    """switch(driver, pins={...}, chain=False) -> (device, watch), online."""
    def make(driver="Direct4", pins=None, chain=False, app="switch", heapsize=None, **extra):
        w = mqtt_watch(broker)
        kw = {"heapsize": heapsize} if heapsize else {}
        dev = device(app, config=config(broker, driver, **extra), start=False, **kw)
        dev.world["pins"].update({str(p): v for p, v in (pins or {}).items()})
        if chain:
            dev.world["models"] += [
                {"bus": "pins", "model": "HC595", "args": CHAIN_595, "name": "out"},
                {"bus": "pins", "model": "HC165", "args": dict(CHAIN_165, inputs=0xFF), "name": "in"}]
        dev.start()
        dev.wait_console("switch: ")
        dev.advance(START_MS)
        w.wait_for(topic("stat", "LWT"), lambda p: p == "Online", device=dev)
        return dev, w
    return make


def released():
    return {p: 1 for p in DIRECT4_IN}


def state(w, dev, i, value, since):
    return w.wait_for(topic("stat", f"{i}/State"), lambda p: p == value, since=since, device=dev)


def press(dev, pin, level=0):
    dev.call("pin.set", pin=pin, value=level)


def outputs(dev, pins=DIRECT4_OUT):
    return [dev.call("pin.get", pin=p) for p in pins]


def test_default_program_and_discovery(switch):
    dev, w = switch(pins=released(), heapsize=ESP32_HEAP)
    for i in range(4):
        state(w, dev, i, "0", 0)
    dev.advance(1000)
    sync(w, dev, NAME)
    assert dev.call("pin.get", pin=2) == 1  # the status LED: on while MQTT is up
    _, cfg, _ = w.wait_for(f"homeassistant/switch/{NAME}/0_State/config", lambda p: p, device=dev)
    doc = json.loads(cfg)
    assert doc["command_topic"] == topic("cmnd", "0/State")
    assert doc["state_topic"] == topic("stat", "0/State") and doc["payload_on"] == "1"
    _, cfg, _ = w.wait_for(f"homeassistant/event/{NAME}/Manual3_Event/config", lambda p: p, device=dev)
    doc = json.loads(cfg)
    # Human event types in Home Assistant; the original's codes stay on the topic.
    assert doc["event_types"] == ["press", "long_press", "toggle_on", "toggle_off", "on", "off"]
    assert doc["name"] == "Button 3" and doc["object_id"] == f"{NAME}_button_3"
    # (Home Assistant renders value_template: make test-ha sees each code as its type.)
    assert w.wait_for(topic("stat", "ProgramCompilation"), device=dev)[1] == "Success"
    assert w.wait_for(topic("stat", "Program"), device=dev)[1] == "0:P:-0/+0;1:P:-1/+1;2:P:-2/+2;3:P:-3/+3"
    m = w.mark()
    press(dev, 34)  # input 1: toggles output 1
    assert w.wait_for(topic("stat", "Manual1/Event"), since=m, device=dev)[1] == "P"
    state(w, dev, 1, "1", m)
    press(dev, 34, 1)
    m = w.mark()
    press(dev, 34)
    state(w, dev, 1, "0", m)
    press(dev, 34, 1)
    assert outputs(dev) == [0, 0, 0, 0]


def test_commands_every_spelling_and_garbage(switch):
    dev, w = switch(pins=released())
    state(w, dev, 2, "0", 0)
    for on, off in (("on", "off"), ("1", "0"), ("up", "down"), ("ON", "OFF"), ("Up", "dOwN")):
        m = w.mark()
        w.publish(topic("cmnd", "2/State"), on)
        state(w, dev, 2, "1", m)
        m = w.mark()
        w.publish(topic("cmnd", "2/State"), off)
        state(w, dev, 2, "0", m)
    m = w.mark()
    for garbage in ("2", "onn", "", "toggle", b"\xff\xfe"):
        w.publish(topic("cmnd", "2/State"), garbage)
    log = w.wait_for(topic("stat", "Log"), lambda p: "2/State" in p and "bad command" in p,
                     since=m, device=dev)[1]
    assert "on/1/up" in log
    w.publish(topic("cmnd", "3/State"), "on")
    state(w, dev, 3, "1", m)
    assert outputs(dev) == [0, 0, 0, 1]
    assert not any(t == topic("stat", "2/State") and p == b"1" for t, p, _ in w.messages[m:])
    assert dev.nvs()["switch"] == {"2": ["i32", 0], "3": ["i32", 1]}


def test_program_upload_good_and_bad(switch):
    dev, w = switch(pins=released())
    w.wait_for(topic("stat", "ProgramCompilation"), device=dev)
    m = w.mark()
    good = "0:T:-0/+0;1:R:-1,-2/+1,+2;2:P:-3/+3"
    w.publish(topic("cmnd", "Program"), good)
    w.wait_for(topic("stat", "Program"), lambda p: p == good, since=m, device=dev)
    assert w.wait_for(topic("stat", "ProgramCompilation"), since=m, device=dev)[1] == "Success"
    assert dev.nvs()["switch"]["program"][0] == "blob"
    m = w.mark()
    w.publish(topic("cmnd", "Program"), "0:P:+9")
    error = w.wait_for(topic("stat", "ProgramCompilation"), lambda p: p != "Success", since=m,
                       device=dev)[1]
    assert error == "statement 1 '0:P:+9': output 9 out of range (0..3)"
    assert w.wait_for(topic("stat", "Program"), since=m, device=dev)[1] == good  # the old one
    m = w.mark()
    w.publish(topic("cmnd", "Program"), "0:Q:+1")  # every upload gets its answer
    assert "kind 'Q'" in w.wait_for(topic("stat", "ProgramCompilation"), since=m, device=dev)[1]
    # the old program still runs: toggle (T), follow (R), push (P)
    m = w.mark()
    press(dev, 26)
    assert w.wait_for(topic("stat", "Manual0/Event"), since=m, device=dev)[1] == "T+"
    state(w, dev, 0, "1", m)
    m = w.mark()
    press(dev, 26, 1)
    assert w.wait_for(topic("stat", "Manual0/Event"), since=m, device=dev)[1] == "T-"
    state(w, dev, 0, "0", m)
    m = w.mark()
    press(dev, 34)
    assert w.wait_for(topic("stat", "Manual1/Event"), since=m, device=dev)[1] == "R+"
    state(w, dev, 1, "1", m)
    state(w, dev, 2, "1", m)
    m = w.mark()
    press(dev, 34, 1)
    assert w.wait_for(topic("stat", "Manual1/Event"), since=m, device=dev)[1] == "R-"
    state(w, dev, 2, "0", m)
    m = w.mark()
    press(dev, 33)  # push button: press, then a long press
    assert w.wait_for(topic("stat", "Manual2/Event"), since=m, device=dev)[1] == "P"
    state(w, dev, 3, "1", m)
    w.wait_for(topic("stat", "Manual2/Event"), lambda p: p == "L", since=m, device=dev)
    state(w, dev, 3, "0", m)
    press(dev, 33, 1)


def test_bouncing_input_counts_once(switch):
    dev, w = switch(pins=released())
    state(w, dev, 0, "0", 0)
    m = w.mark()
    # contact bounce: flips far shorter than the 50 ms debounce, then it holds
    for level in (0, 1, 0, 1, 0, 1, 0):
        press(dev, 26, level)
    state(w, dev, 0, "1", m)
    press(dev, 26, 1)
    w.wait_for(topic("stat", "Manual0/Event"), since=m, device=dev)
    dev.advance(200)
    sync(w, dev, NAME)
    assert outputs(dev)[0] == 1
    events = [p for t, p, _ in w.messages[m:] if t == topic("stat", "Manual0/Event")]
    assert events == [b"P"]


def signed(w, dev, text, counter):
    w.publish(topic("cmnd", "OTA"), diag.sign(KEY, NAME, text, counter))


def latches(dev, boot):
    return [e["state"]["latched"] for e in dev.events
            if e.get("event") == "model" and e.get("name") == "out" and e["_boot"] == boot]


def test_chain_outputs_survive_resets_without_a_glitch(switch):
    dev, w = switch("dtwonder8", chain=True)
    m = w.mark()
    for i in (1, 4, 6):
        w.publish(topic("cmnd", f"{i}/State"), "on")
    state(w, dev, 6, "1", m)
    assert dev.call("model.call", name="out", method="outputs") == 0b01010010

    def reset_and_check(boot, do):
        do()
        dev.wait_boot(boot)
        dev.wait_console("switch: ", boot=boot)
        # every latch edge of the new boot (the strapping pull-up at reset, then the
        # restore) shows the outputs they showed before
        assert latches(dev, boot) and set(latches(dev, boot)) == {0b01010010}
        assert dev.call("model.call", name="out", method="outputs") == 0b01010010
        assert "restored from RTC memory" in dev.output(boot)

    reset_and_check(2, lambda: signed(w, dev, "reboot", 1))          # machine.reset()
    reset_and_check(3, lambda: os.kill(dev._proc.pid, signal.SIGSEGV))  # a crash (panic)
    assert dev.boots[2]["reset_cause"] == 2
    m = w.mark()  # the third boot is not on the network yet: what follows is its
    # inputs still work after the resets, and a power cycle restores from NVS
    dev.advance(START_MS)
    w.wait_for(topic("stat", "LWT"), lambda p: p == "Online", since=m, device=dev)
    w.wait_for(topic("stat", "Health"), since=m, device=dev)  # the connection's last value:
    m = w.mark()  # a press now is sent at once (held past longpress, it would switch back)
    dev.call("model.call", name="in", method="set_input", args=[0, 0])
    state(w, dev, 0, "1", m)
    dev.power_cycle()
    dev.wait_boot(4)
    dev.wait_console("switch: ", boot=4)
    assert "restored from NVS" in dev.output(4)
    assert dev.call("model.call", name="out", method="outputs") == 0b01010011


def test_gpio_outputs_survive_reset_and_follow_inputs_win(switch):
    dev, w = switch(pins=released())
    w.wait_for(topic("stat", "ProgramCompilation"), device=dev)
    m = w.mark()
    w.publish(topic("cmnd", "Program"), "0:P:-0/+0;1:P:-1/+1;2:R:-2/+2;3:P:-3/+3")
    w.wait_for(topic("stat", "ProgramCompilation"), since=m, device=dev)
    for i in (0, 2):
        w.publish(topic("cmnd", f"{i}/State"), "1")
    state(w, dev, 2, "1", m)
    assert outputs(dev) == [1, 0, 1, 0]
    before = len(dev.events)
    signed(w, dev, "reboot", 1)
    dev.wait_boot(2)
    dev.wait_console("switch: ", boot=2)
    assert outputs(dev) == [1, 0, 1, 0]
    # no output pin showed another level during the reboot
    for e in dev.events[before:]:
        if e.get("event") == "pin" and e["pin"] in DIRECT4_OUT:
            assert e["value"] == [1, 0, 1, 0][DIRECT4_OUT.index(e["pin"])], e
    # switch 2 (R) is off now: after a power cycle it wins over NVS
    press(dev, 33, 1)
    dev.power_cycle()
    dev.wait_boot(3)
    dev.wait_console("switch: ", boot=3)
    assert outputs(dev) == [1, 0, 0, 0]


def test_chain_outputs_survive_watchdog_exception_and_soft_reset(switch):
    # tests/firmware/swfault: the switch firmware plus cmnd/<n>/Fault
    dev, w = switch("dtwonder8", chain=True, app="swfault", watchdog=1)
    m = w.mark()
    for i in (0, 7):
        w.publish(topic("cmnd", f"{i}/State"), "on")
    state(w, dev, 7, "1", m)
    expected = 0b10000001

    def survive(boot, fault, cause, advance_ms=0):
        m = w.mark()
        mark = dev.console_mark()
        w.publish(topic("cmnd", "Fault"), fault)
        if advance_ms:
            dev.wait_console("fault: hang", since=mark)
            dev.advance(advance_ms)
        record = dev.wait_boot(boot, timeout=20)
        assert record["reset_cause"] == cause
        dev.wait_console("switch: ", boot=boot)
        assert latches(dev, boot) and set(latches(dev, boot)) == {expected}
        assert dev.call("model.call", name="out", method="outputs") == expected
        assert "restored from RTC memory" in dev.output(boot)
        dev.advance(START_MS)
        w.wait_for(topic("stat", "LWT"), lambda p: p == "Online", since=m, device=dev)
        for _ in range(11):  # not a boot loop (no safe mode); the watchdog stays fed
            dev.advance((BOOT_LOOP_WINDOW_MS - START_MS) // 11 + 1)
            sync(w, dev, NAME)

    survive(2, "hang", 3, advance_ms=30_000)   # the watchdog resets the chip
    survive(3, "raise", 2)                     # the crash path: exception.txt, reset
    survive(4, "soft", 5)                      # machine.soft_reset()
    m = w.mark()
    w.publish(topic("cmnd", "Fault"), "garbage")
    assert "bad command" in w.wait_for(topic("stat", "Log"), lambda p: "Fault" in p, since=m,
                                       device=dev)[1]


def second_version(profile, tag):
    """The app image of `profile` built as version <profile>-<tag>, in its own build root
    (seeded from a sibling build: only the frozen part compiles)."""
    root = BUILD / f"ota-{profile}-{tag}"
    root.mkdir(parents=True, exist_ok=True)
    seed = root / "unix-seed"
    if not seed.exists():
        try:
            seed.symlink_to(sorted(p.parent for p in BUILD.glob("unix-*/micropython"))[0])
        except FileExistsError:
            pass
    env = dict(os.environ, EPX_BUILD=str(root), EPX_VERSION=tag)
    subprocess.run([sys.executable, "-m", "epx", "unix", profile], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    exe = root / f"unix-{profile}" / "micropython"
    out = exe.parent / "app.bin"
    tmp = out.with_name(f"app.bin.{os.getpid()}")
    appimage.write(exe, f"{profile}-{tag}", tmp)
    os.replace(tmp, out)
    return out.read_bytes()


def test_chain_outputs_survive_an_ota_update(switch, broker):
    new = ota.load_image(second_version("switch", "2"))
    # poll 1000: the clock runs 10 times faster below, and so do the chips' pin events
    dev, w = switch("dtwonder8", chain=True, poll=1000, ota_healthy_s=5, ota_verify_s=60,
                    homeassistant=0)
    m = w.mark()
    for i in (2, 3, 5):
        w.publish(topic("cmnd", f"{i}/State"), "on")
    state(w, dev, 5, "1", m)
    expected = 0b00101100
    dev.call("clock.scale", factor=10)
    target = ota.Target(NAME, KEY, broker.host, broker.port, None, None)
    result = ota.rollout([target], new, serve_host="127.0.0.1", comeback_timeout=60)[0]
    assert result.outcome == "kept", (result, dev.output())
    boot = len(dev.boots)
    assert boot >= 2 and dev.boots[-1]["version"] == "switch-2"
    for b in range(2, boot + 1):
        assert set(latches(dev, b)) == {expected}, b
        assert "restored from RTC memory" in dev.output(b)
    assert dev.call("model.call", name="out", method="outputs") == expected


def test_follow_switch_flipped_during_a_crash(switch):
    dev, w = switch("dtwonder8", chain=True, poll=1000)
    w.wait_for(topic("stat", "ProgramCompilation"), device=dev)
    m = w.mark()
    w.publish(topic("cmnd", "Program"), "0:R:-0/+0")
    w.wait_for(topic("stat", "Program"), lambda p: p == "0:R:-0/+0", since=m, device=dev)
    dev.call("model.call", name="in", method="set_input", args=[0, 0])  # active low: on
    state(w, dev, 0, "1", m)
    # off, and the chip crashes before its next poll (1 s) could see it
    dev.call("model.call", name="in", method="set_input", args=[0, 1])
    os.kill(dev._proc.pid, signal.SIGSEGV)
    dev.wait_boot(2)
    dev.wait_console("switch: ", boot=2)
    assert dev.call("model.call", name="out", method="outputs") == 0
    assert set(latches(dev, 2)) <= {1, 0}  # the old state (pull-up edge), then the new
    m = w.mark()
    dev.advance(START_MS)
    assert w.wait_for(topic("stat", "Manual0/Event"), since=m, device=dev)[1] == "R-"
    state(w, dev, 0, "0", m)
