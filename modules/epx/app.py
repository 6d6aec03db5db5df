# Start-up and the crash path. profiles/<p>/main.py:
#     from epx import app
#     app.run("h2o.service")      # the module whose setup() starts the appliance
# Everything from here on runs under the crash path: an exception anywhere, even while
# importing the profile, leaves its trace in exception.txt and resets; a reset is reported
# on stat/<n>/Log after the reboot. run() never returns: the device never idles at a REPL.
import asyncio
import gc
import machine

from epx import config, confstore, crash, log, loop, watchdog
from epx.version import VERSION

_BOOT_LOOP_RESETS = const(3)  # this many resets in a row, each within...
_BOOT_LOOP_WINDOW_MS = const(120000)  # ...this time of boot: safe mode
_NETWORK_DELAY_MS = const(12000)
_HOUSEKEEPING_MS = const(10000)
_PORTAL_REBOOT_MS = const(1000)
_REPORT_MAX = const(2000)  # characters of a file read into a report
_TAIL_MAX = const(600)  # of a longer file, its end: a trace's innermost frames and exception
_CAUSE_MAX = const(100)  # characters of a reboot reason as the Last reset entity
_RTC_TAG = const(b"epx")  # RTC memory: tag, then the count of short-lived boots

_CAUSES = {
    machine.PWRON_RESET: "power on",
    machine.HARD_RESET: "hard reset",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep sleep",
    machine.SOFT_RESET: "soft reset",
}

# The CPU clock in MHz: 80 as the original ran its appliances, cooler and plenty for them
# (bench/bench_cpufreq.py). machine.freq also takes 20 and 40, where the ESP32's WiFi and
# ESP-NOW stop: a device set so would be out of reach.
CPU_MHZ = config.key("cpufreq", config.one_of("80", "160", "240"), "80", "CPU clock|MHz|80|80, 160 or 240")

safe_mode = False
safe_reasons = []  # why, when safe_mode
offline = None  # why the config cannot reach a broker: the fallback access point's cue
_reports = []
_cause = None  # why this boot happened, as text


def run(setup=None, watchdog_grace_ms=watchdog.GRACE_MS, network=True, safe_setup=None):
    """Boot the appliance and run the loop forever. setup is the profile's module name (its
    setup() is called) or a function; in safe mode only the core runs, and safe_setup() if
    given (a battery sensor without network goes back to sleep)."""
    try:
        _boot(setup, watchdog_grace_ms, network, safe_setup)
        asyncio.get_event_loop().run_forever()
        crash.reboot("event loop ended")
    except BaseException as e:
        crash.fatal(e)


def _boot(setup, grace_ms, network, safe_setup):
    global safe_mode, _cause
    cause = machine.reset_cause()
    _cause = str(_CAUSES.get(cause, cause))
    log.info("epx %s: %s" % (VERSION, _cause))
    resets = _count_boot(cause)
    if resets and confstore.staged():  # the reboot into a new candidate: no boot loop
        _set_rtc_count(1)
        resets = 0
    if resets >= _BOOT_LOOP_RESETS:
        _safe("boot loop: %d resets within %d s of boot" % (resets, _BOOT_LOOP_WINDOW_MS // 1000))
        setup = None  # not even imported: safe_setup runs instead
    setup = declare(setup, network)
    config.load(confstore.begin(), unknown_ok=safe_mode)
    for w in config.warnings:
        log.warn(w)
    for e in config.errors:
        log.error(e)
    if config.safe_mode:
        _safe("%s broken" % config.FILE)
    if network:
        _improv()
    machine.freq(int(CPU_MHZ.value) * 1000000)
    log.info("cpu: %d MHz" % (machine.freq() // 1000000))
    _take_reports(cause)
    if confstore.trial:
        if safe_mode:  # a candidate the device cannot run: back at once
            _candidate_failed("safe mode: " + "; ".join(safe_reasons + config.errors))
        confstore.start_trial(lambda minutes: _candidate_failed(
            "no MQTT within %d min (%s)" % (minutes, _trouble())))
    asyncio.get_event_loop().set_exception_handler(_task_failed)
    watchdog.start(grace_ms)
    loop.every(_HOUSEKEEPING_MS, _housekeeping)
    loop.later(_BOOT_LOOP_WINDOW_MS, _survived)
    if network:
        loop.later(max(0, _NETWORK_DELAY_MS - loop.uptime_ms()), _start_network)
    if safe_mode:
        setup = safe_setup
    if setup is not None:
        setup()


def declare(setup, network=True):
    """Import what declares the config keys: the profile's setup module (setup is its
    name) and, with a network, epx's network modules. The setup function. `epx provision`
    calls it (through main.py) to check a config.txt with this firmware's keys."""
    if isinstance(setup, str):
        setup = __import__(setup, None, None, ("setup",)).setup
    if network:
        from epx import ap, diag, net, mqtt  # noqa: F401
    return setup


def _improv():
    # No WiFi to join: ESP Web Tools' install page can set it over the console (Improv).
    from epx import mqtt, net
    from epx.version import BOARD, PROFILE

    if net.SSID.value is not None:
        return
    from epx import improv

    improv.start(("epx " + PROFILE, VERSION, BOARD + "/esp32", mqtt.NAME.value or PROFILE))


def _safe(reason):
    global safe_mode
    safe_mode = True
    safe_reasons.append(reason)
    log.error("safe mode: " + reason)


def _task_failed(_loop, context):
    crash.fatal(context["exception"])


def _start_network():
    # In safe mode nothing reboots for want of a network: a reboot cannot mend a config.
    global offline
    from epx import ap, diag, health, net, mqtt, sntp, update

    offline = offline_reason()
    if offline is not None:
        if confstore.trial:
            _candidate_failed(offline)
        log.error("safe mode: %s: the setup access point" % offline)
        from epx.version import PROFILE

        return ap.start(mqtt.NAME.value or PROFILE, None, _portal_config(False), False)
    net.start(not safe_mode)
    sntp.start()
    if confstore.trial:
        mqtt.sm.observe(_keep_candidate)
    mqtt.start(not safe_mode)
    diag.install(lambda: safe_mode)
    _queue_reports(mqtt)
    health.start(_cause, lambda: safe_mode)
    update.start()
    ap.start(mqtt.NAME.value, lambda: mqtt.connected, _portal_config(True), True, _hold_reboots)


def _hold_reboots(on):
    from epx import mqtt, net

    net.hold_reboot(on)
    mqtt.hold_reboot(on)


def _portal_config(configured):
    # A configured device tries the portal's config as a candidate (a wrong WiFi password
    # falls back); an unconfigured one has nothing to fall back to: it becomes config.txt.
    def submit(text):
        if configured:
            errs = confstore.store(text)
        else:
            errs = config.check(text)
            if not errs:
                confstore.write(config.FILE, text)
        if not errs:  # after the page has gone out
            loop.later(_PORTAL_REBOOT_MS, lambda: crash.reboot("config from the setup portal"))
        return errs

    return submit


def offline_reason():
    """Why config.txt cannot take the device to a broker (a key that is missing or bad), or
    None when it can."""
    from epx import net, mqtt

    for name, k in (("ssid", net.SSID), ("mqttbroker", mqtt.BROKER)):
        if k.value is None:
            return "no usable %s in %s" % (name, config.FILE)
    return None


# --- a config candidate on trial (epx.confstore)


def _candidate_failed(why):
    crash.reboot("config candidate failed: " + why)


def _trouble():
    from epx import mqtt, net

    if not net.up():
        return "network: %s" % (net.problem or net.sm.state)
    return "mqtt: %s" % (mqtt.problem or mqtt.sm.state)


def _keep_candidate(old, new):
    if new == "up" and confstore.keep():
        from epx import mqtt

        mqtt.report("config: candidate kept, now %s" % config.FILE)


def _housekeeping():
    loop.uptime_ms()  # keeps counting past the ticks wrap-around
    gc.collect()


# --- boot loops: the count of boots that ended within _BOOT_LOOP_WINDOW_MS, in RTC memory


def _rtc_count():
    mem = machine.RTC().memory()
    return mem[3] if len(mem) > 3 and mem[:3] == _RTC_TAG else 0


def _set_rtc_count(n):
    mem = machine.RTC().memory()
    rest = mem[4:] if len(mem) > 3 and mem[:3] == _RTC_TAG else b""
    machine.RTC().memory(_RTC_TAG + bytes((min(n, 255),)) + rest)


def _count_boot(cause):
    """Resets in a row that came soon after boot, before this one."""
    n = 0 if cause in (machine.PWRON_RESET, machine.DEEPSLEEP_RESET) else _rtc_count()
    _set_rtc_count(n + 1)
    return n


def _survived():
    _set_rtc_count(0)
    log.info("up %d s: a good boot" % (_BOOT_LOOP_WINDOW_MS // 1000))


# --- what happened before this boot, for stat/<n>/Log


def _read(name):
    """The file's text; past _REPORT_MAX characters, its beginning and its end."""
    try:
        with open(name) as f:
            text = f.read(_REPORT_MAX)
            more = f.read(_REPORT_MAX)
            if not more:
                return text.strip()
            tail = text[-_TAIL_MAX:]
            while more:
                tail = (tail + more)[-_TAIL_MAX:]
                more = f.read(_REPORT_MAX)
            return (text[:_REPORT_MAX - _TAIL_MAX] + "\n...\n" + tail).strip()
    except OSError:
        return None


def _take_reports(cause):
    global _cause
    now = log.utc()  # known at boot if the RTC kept it through a reset
    _reports.append("boot %s: %s%s" % (VERSION, _CAUSES.get(cause, cause), ", at " + now if now else ""))
    if safe_mode:
        _reports.append("safe mode: " + "; ".join(safe_reasons + config.errors))
    if config.warnings:
        _reports.append("config: " + "; ".join(config.warnings))
    unreported = crash.flags()
    if confstore.reverted:
        why = _read(crash.REBOOT_FILE) if unreported & crash.REBOOT_UNREPORTED else None
        _reports.append("config: candidate dropped, back on the previous %s: %s" % (
            config.FILE, why or "its boot ended by " + _cause))
        log.error(_reports[-1])
    for bit, name, what in ((crash.REBOOT_UNREPORTED, crash.REBOOT_FILE, "reboot"),
                            (crash.EXCEPTION_UNREPORTED, crash.EXCEPTION_FILE, "exception")):
        text = _read(name) if unreported & bit else None
        if text:  # None once removed by a diagnostic
            _reports.append("%s: %s" % (what, text))
            if bit == crash.REBOOT_UNREPORTED:
                _cause = text.split(" (after ")[0][:_CAUSE_MAX]  # what the device logged


def pending_reports():
    """Messages for stat/<n>/Log: this boot, and the reboot reason and trace before it."""
    return _reports


def _queue_reports(mqtt):
    # Sent in order on the first connection; the flags are cleared once the last one went.
    for i, line in enumerate(_reports):
        mqtt.publish("Log", line, done=_reports_sent if i == len(_reports) - 1 else None)


def _reports_sent():
    log.info("reported %d messages" % len(_reports))
    _reports.clear()
    crash.set_flags(0)


def reboot(reason):
    """A deliberate reset; the reason is reported after the reboot."""
    crash.reboot(reason)
