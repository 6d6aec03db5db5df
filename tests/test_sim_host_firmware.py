"""The real host firmware in the simulated device: the bootloader, resets, flash persistence
and ESP-NOW, end to end. The firmware is tests/firmware/simcheck; each boot runs the
scenario named by SIMCHECK (chosen per boot here) and prints `simcheck: {json}` lines."""

import json

import pytest

from epx.sim import appimage, device as sim
from epx.sim.medium import Medium

CONFIG = "unit L\ncapacity 1000\n"


def said(dev, key, boot=None, timeout=10):
    """The value of `key` in the first `simcheck:` line (of boot `boot`) that has it."""
    m = dev.wait_console(rf'simcheck: (\{{.*"{key}".*\}})', boot=boot, timeout=timeout)
    return json.loads(m.group(1))[key]


def scenarios(*names):
    """SIMCHECK per boot: the i-th name for boot i, the last one from then on."""
    return lambda n: {"SIMCHECK": names[min(n, len(names)) - 1]}


@pytest.fixture
def simcheck(device, firmware):
    fw = firmware("simcheck")

    def make(*names, **kw):
        return device(fw.image, config=CONFIG, env=scenarios(*names), **kw)

    make.firmware = fw
    return make


def test_nvs_persists_across_reset_and_power_cycle(simcheck):
    dev = simcheck("nvs", "reset", "nvs")
    assert said(dev, "boots", boot=1) == 0
    dev.wait_exit(1)  # nvs returns to the REPL: the run ends
    dev.power_cycle()
    assert said(dev, "boots", boot=3) == 1  # boot 2 reset
    assert [b["reset_cause"] for b in dev.boots[:3]] == [sim.PWRON_RESET, sim.PWRON_RESET, sim.HARD_RESET]
    dev.wait_exit(3)
    assert dev.nvs()["simcheck"]["boots"] == ["i32", 2]


def test_littlefs_persists_and_holds_the_provisioned_config(simcheck):
    dev = simcheck("partition")
    assert said(dev, "hello", boot=1) == "x"
    assert "config.txt" in said(dev, "files", boot=1)
    dev.wait_exit(1)
    dev.power_cycle()
    assert said(dev, "hello", boot=2) == "xx"
    dev.wait_exit(2)
    files = dev.files()
    assert files["hello.txt"] == b"xx" and files["config.txt"] == CONFIG.encode()


def test_rollback_of_an_app_that_resets_before_it_is_marked_valid(simcheck):
    dev = simcheck("mark_valid", "reset", "mark_valid")
    dev.wait_exit(1)
    assert dev.boots[0]["slot"] == "ota_0"
    new = appimage.build(simcheck.firmware.executable, "simcheck-next")
    dev.install("ota_1", new)
    dev.power_cycle()
    second, third = dev.wait_boot(2), dev.wait_boot(3)
    assert (second["slot"], second["state"], second["version"]) == ("ota_1", "pending_verify", "simcheck-next")
    assert (third["slot"], third["state"], third["reset_cause"]) == ("ota_0", "valid", sim.HARD_RESET)
    assert said(dev, "boot", boot=3) == "ota_0"


def test_new_app_kept_once_marked_valid(simcheck):
    dev = simcheck("mark_valid")
    dev.wait_exit(1)
    dev.install("ota_1", appimage.build(simcheck.firmware.executable, "simcheck-next"))
    dev.power_cycle()
    assert dev.wait_boot(2)["state"] == "pending_verify"
    assert said(dev, "boot", boot=2) == "ota_1"
    dev.wait_exit(2)
    dev.power_cycle()
    boot = dev.wait_boot(3)
    assert (boot["slot"], boot["state"], boot["version"]) == ("ota_1", "valid", "simcheck-next")


def test_watchdog_expiry_resets_with_the_watchdog_cause(simcheck):
    dev = simcheck("wdt", "clock")
    said(dev, "fed", boot=1)
    dev.advance(3000)  # no feed for 3 s of device time: the 2 s watchdog fires
    boot = dev.wait_boot(2)
    assert boot["reset_cause"] == sim.WDT_RESET
    assert dev.wait_exit(1)["exit"] == sim.EXIT_WDT


def test_deep_sleep_wakes_by_timer_after_the_requested_time(simcheck):
    dev = simcheck("deepsleep", "deepsleep", "clock")
    assert said(dev, "cause", boot=1) == sim.PWRON_RESET
    assert said(dev, "cause", boot=2) == sim.DEEPSLEEP_RESET
    assert said(dev, "wake", boot=2) == sim.TIMER_WAKE
    third = dev.wait_boot(3)
    assert third["ticks_start_ms"] >= 120000  # two sleeps of 60 s, no real waiting
    assert said(dev, "t", boot=3) >= 120000


def test_espnow_between_two_devices(simcheck):
    air = Medium(seed=3)
    # The scenario adds the peer 24:0a:c4:00:00:02, sends it "ping" and waits for a frame.
    b = simcheck("espnow", name="b", medium=air, mac="240ac4000002")
    said(b, "unknown", boot=1)  # b's ESP-NOW is up (its own ping went nowhere)
    a = simcheck("espnow", name="a", medium=air)
    assert said(b, "got") == "ping" and said(b, "host") == a.mac
    assert (a.mac, b.mac, "delivered") in [(f[0], f[1], f[3]) for f in air.frames]


def test_espnow_send_times_out_and_meets_full_buffers_as_the_port(simcheck):
    """modespnow.c:espnow_send: a sync send waits 100 ms (PENDING_RESPONSES_TIMEOUT_MS) for
    the send callback, then OSError(ETIMEDOUT) (the late callback still counts); while
    esp_now_send returns ESP_ERR_ESPNOW_NO_MEM it is retried for 2 s
    (DEFAULT_SEND_TIMEOUT_MS), then check_esp_err raises it and the frame never left.
    The peer is absent: the frames that go out are not acknowledged (False)."""
    air = Medium(seed=3)
    mac = "240ac4000009"
    air.trouble[mac] = [None, "late", "no_mem", None]
    dev = simcheck("espnow_trouble", medium=air, mac=mac)
    (first, late, no_mem, last), stats = said(dev, "trouble"), said(dev, "stats")
    # (the host's answer to each frame takes real time, which the device clock may count)
    assert first[0] is False and last[0] is False and first[1] < 100 and last[1] < 100
    assert late[0] == [110] and 101 <= late[1] < 1000
    assert no_mem[0] == [-0x3067, "ESP_ERR_ESPNOW_NO_MEM"] and 2000 <= no_mem[1] < 3000
    assert stats == [3, 3, 3]  # tx packets, responses, failures
    assert [f[3] for f in air.frames] == ["no peer", "no peer", "no_mem", "no peer"]


def test_boot_py_from_the_filesystem_reads_config_txt(simcheck):
    boot_py = ("import machine\n"
               "print('config:', repr(open('config.txt').read()), machine.reset_cause())\n"
               "machine.deepsleep()\n")  # no wake-up source: asleep until the power cycles
    dev = simcheck("clock", files={"boot.py": boot_py})
    assert dev.wait_console(r"config: '(.*)' (\d)").groups() == (repr(CONFIG)[1:-1], "1")
    dev.wait_exit(1)
    assert "deep sleep without a wake-up source" in dev.wait_ended()
    dev.power_cycle()
    dev.wait_console(r"config: .* 1", boot=2)


def told(dev, key, boot):
    """The whole first `simcheck:` object of boot `boot` that has `key`."""
    m = dev.wait_console(rf'simcheck: (\{{.*"{key}".*\}})', boot=boot)
    return json.loads(m.group(1))


def test_rtc_starts_in_2000_and_keeps_its_time_through_every_reset_but_power(simcheck):
    import datetime

    # The port's epoch is 2000-01-01 (ports/esp32 leaves MICROPY_EPOCH_IS_1970 unset); the
    # expected values are CPython's.
    epoch = datetime.datetime(2000, 1, 1)
    was_set = int((datetime.datetime(2025, 6, 1, 12) - epoch).total_seconds())
    dev = simcheck("rtc_soft", "rtc_wdt", "rtc_sleep", "rtc_reset", "rtc_idle")
    first = told(dev, "rtc", boot=1)
    assert first["gmtime"][:3] == [2000, 1, 1] and first["rtc"][:3] == [2000, 1, 1]
    assert first["rtc"][3] == epoch.weekday() == 5 and first["gmtime"][6] == 5
    assert -1 <= first["time"] - first["ticks"] // 1000 <= 0  # from 0 at power-on
    assert told(dev, "short", boot=1)["short"] == "requested length 8 but object has length 7"
    done = told(dev, "set", boot=1)
    assert 0 <= done["set"] - was_set <= 1
    zero = was_set - done["ticks"] / 1000  # the wall clock at device clock 0

    causes = [sim.SOFT_RESET, sim.WDT_RESET, sim.DEEPSLEEP_RESET, sim.HARD_RESET]
    for boot, cause in zip(range(2, 6), causes):
        assert dev.wait_boot(boot)["reset_cause"] == cause
        now = told(dev, "rtc", boot=boot)
        assert now["rtc"][:4] == [2025, 6, 1, 6] and now["gmtime"][:3] == [2025, 6, 1]
        assert abs(now["time"] - now["ticks"] / 1000 - zero) <= 1.5, (boot, now, zero)
        assert '"set":' not in dev.output(boot=boot)  # the time was kept, not set again
    assert told(dev, "rtc", boot=4)["time"] >= was_set + 60  # the deep sleep counted

    dev.power_cycle()
    boot = dev.wait_boot(6)
    assert boot["reset_cause"] == sim.PWRON_RESET
    again = told(dev, "rtc", boot=6)
    assert again["gmtime"][:3] == [2000, 1, 1]
    assert abs(again["time"] - (again["ticks"] - boot["ticks_start_ms"]) / 1000) <= 1.5
