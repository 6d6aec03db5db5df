# The energy appliance: the meter on a 1 s tick from 20 s after boot, its MQTT face, and an
# optional read-only TCP ticker.
import asyncio
import time
from machine import UART

from epx import config, log, loop, mqtt, pins, sntp, tz
from epx.nvram import NVRAM
from pzem import PZEM
from energy.days import Days
from energy.meter import Meter

UART_TX = pins.key("uarttx", pins.OUT, doc="UART TX pin|GPIO||To the PZEM-004T's RX")
UART_RX = pins.key("uartrx", pins.IN, doc="UART RX pin|GPIO||From the PZEM-004T's TX")
TICKER = config.key("ticker", config.int_range(1, 65535), None, "Ticker port||1338|A read-only TCP stream of the readings; empty: closed")
# The local time zone for Today, Yesterday and the clock hours: a POSIX TZ string (as
# ESPHome's `timezone`), daylight saving included: CET-1CEST,M3.5.0,M10.5.0/3.
TIMEZONE = config.key("timezone", tz.Zone, None, "Time zone||CET-1CEST,M3.5.0,M10.5.0/3|A POSIX TZ string, as ESPHome's timezone: daylight saving included; empty: UTC")
# Before timezone: fixed minutes east of UTC, still read (a zone without daylight saving).
TZOFFSET = config.key("tzoffset", config.int_range(-720, 840), None, "Time zone offset (old)|min|60|Minutes east of UTC, no daylight saving: use timezone instead")

_START_MS = const(20000)
_TICK_MS = const(1000)  # one exchange per tick: the tick is the reply window
_TICKER_MS = const(2000)
_TICKER_CLIENTS = const(2)
_TICKER_RETRY_MS = const(5000)
_EVERY_CHECK = const(1)  # force_s: published at each check, changed or not
_ALIGN_SLACK_MS = const(2000)  # a window end this far off the clock hour is moved onto it

meter = None
days = None
total = None  # Wh since the first boot: the sum of the closed windows (NVS)
_nv = None
_windows = 0
_error = None
_kept = None  # the window's base as NVS has it
_clients = 0
_dated = False
_zone = None
_shown = 0  # Energy as last computed: it never goes down (total_increasing)


def setup():
    global meter, days, total, _nv, _kept
    mqtt.describe("Mains energy meter")
    _nv = NVRAM("energy")
    total = _nv.get_int("total", 0)
    _kept = _nv.get_int("base")
    uart = UART(2, 9600, bits=8, parity=None, stop=1, tx=UART_TX.value, rx=UART_RX.value,
                timeout=0)
    meter = Meter(PZEM(uart), base=_kept)
    loop.later(max(0, _START_MS - loop.uptime_ms()), lambda: loop.every(_TICK_MS, _tick))
    for name, attr, fmt, label, device_class, unit in (
            ("V", "voltage", "%.1f", "Voltage", "voltage", "V"),
            ("A", "current", "%.3f", "Current", "current", "A"),
            ("W", "power", "%.1f", "Power", "power", "W"),
            ("PowerFactor", "pf", "%.2f", "Power factor", "power_factor", None)):
        _reading(name, attr, fmt, {"name": label, "device_class": device_class,
                                   "unit_of_measurement": unit, "state_class": "measurement"})
    mqtt.pub("Energy", _energy, "%d", check_s=60, force_s=1800,
             ha={"device_class": "energy", "unit_of_measurement": "Wh", "name": "Total",
                 "state_class": "total_increasing"})
    global _zone
    _zone = zone()
    days = Days(_nv, _zone)
    mqtt.pub("Today", lambda: days.today_wh(_open_wh()), "%d", check_s=60, force_s=1800,
             ha={"device_class": "energy", "unit_of_measurement": "Wh", "name": "Today",
                 "state_class": "total_increasing"})
    mqtt.pub("Yesterday", lambda: days.yesterday, "%d", check_s=60, force_s=1800,
             ha={"device_class": "energy", "unit_of_measurement": "Wh", "name": "Yesterday",
                 "state_class": None})
    mqtt.pub("Malfunction", lambda: meter.malfunction, "%d", check_s=5, force_s=1800,
             ha=mqtt.MALFUNCTION)
    if TICKER.value:
        loop.task(_listen(TICKER.value))


def zone():
    if TIMEZONE.value is not None:
        return TIMEZONE.value
    minutes = TZOFFSET.value or 0
    if TZOFFSET.value is not None:
        log.warn("config: tzoffset is fixed minutes: timezone (a POSIX TZ string) follows "
                 "daylight saving")
    # POSIX writes the offset west of UTC
    return tz.Zone("<UTC>%s%d:%02d" % ("-" if minutes > 0 else "+", abs(minutes) // 60,
                                        abs(minutes) % 60))


def _energy():
    # Every minute: the closed windows and what the open one has counted so far.
    global _shown
    _shown = max(_shown, total + _open_wh())
    return _shown


def _reading(name, attr, fmt, ha):
    mqtt.pub(name, lambda: meter.reading(attr), fmt, check_s=60, force_s=_EVERY_CHECK, ha=ha)


def _tick():
    global _windows, total, _error, _kept, _dated
    meter.tick()
    if meter.windows != _windows:
        _windows = meter.windows
        total += meter.window_wh
        _nv.set_int("total", total)
        days.closed(meter.window_wh)
        mqtt.publish("Wh", "%.1f" % meter.window_wh)  # once per window, in order
    if not _dated:
        _dated = sntp.known()  # once the date is known it stays known until power is lost
    days.tick(time.time() if _dated else None, _open_wh())
    if _dated:
        _align(time.time())
    if meter.base != _kept:
        _kept = meter.base
        _nv.set_int("base", _kept)  # about twice an hour: at the close and after the reset
    if meter.error != _error:
        _error = meter.error
        if _error:
            log.warn("energy: " + _error)


def _align(now_s):
    # Once the time is known the hour windows close on the local clock's hours.
    left = meter.window_left_ms()
    if left is None:
        return
    due = (3600 - _zone.local(now_s) % 3600) * 1000
    if abs(left - due) > _ALIGN_SLACK_MS and abs(left - due) < 3600000 - _ALIGN_SLACK_MS:
        meter.end_window_in(due)


def _open_wh():
    # What the open window has counted so far (0 when the meter cannot say).
    if not meter.fresh or meter.base is None:
        return 0
    return max(0, meter.pzem.energy - meter.base)


def ticker_line():
    if not meter.fresh:
        return "Malfunction %d\n" % meter.malfunction
    p = meter.pzem
    return "V %.1f A %.3f W %.1f PF %.2f Hz %.1f Wh %d\n" % (
        p.voltage, p.current, p.power, p.pf, p.frequency, p.energy - (meter.base or 0))


async def _listen(port):
    from epx import net

    while True:
        if net.up():
            try:
                await asyncio.start_server(_ticker, "0.0.0.0", port, 1)
                log.info("energy: ticker on port %d" % port)
                return
            except OSError as e:
                log.warn("energy: ticker: %s" % e)
        await asyncio.sleep_ms(_TICKER_RETRY_MS)


async def _ticker(reader, writer):
    # Read-only: nothing a client sends is read, let alone obeyed.
    global _clients
    if _clients >= _TICKER_CLIENTS:
        writer.close()
        await writer.wait_closed()
        return
    _clients += 1
    try:
        while True:
            writer.write(ticker_line())
            await writer.drain()
            await asyncio.sleep_ms(_TICKER_MS)
    except OSError:
        pass
    finally:
        _clients -= 1
        writer.close()
        await writer.wait_closed()
