# The energy appliance: the meter on a 1 s tick from 20 s after boot, its MQTT face, and an
# optional read-only TCP ticker.
import asyncio
import time
from machine import UART

from epx import config, log, loop, mqtt, pins, sntp
from epx.nvram import NVRAM
from pzem import PZEM
from energy.days import Days
from energy.meter import Meter

UART_TX = pins.key("uarttx", pins.OUT, doc="UART TX pin|GPIO||To the PZEM-004T's RX")
UART_RX = pins.key("uartrx", pins.IN, doc="UART RX pin|GPIO||From the PZEM-004T's TX")
TICKER = config.key("ticker", config.int_range(1, 65535), None, "Ticker port||1338|A read-only TCP stream of the readings; empty: closed")
TZ = config.key("tzoffset", config.int_range(-720, 840), 0, "Time zone offset|min|60|Minutes east of UTC: the day's totals end at local midnight")  # minutes east of UTC: local midnight

_START_MS = const(20000)
_TICK_MS = const(1000)  # one exchange per tick: the tick is the reply window
_TICKER_MS = const(2000)
_TICKER_CLIENTS = const(2)
_TICKER_RETRY_MS = const(5000)
_EVERY_CHECK = const(1)  # force_s: published at each check, changed or not

meter = None
days = None
total = None  # Wh since the first boot: the sum of the closed windows (NVS)
_nv = None
_windows = 0
_error = None
_kept = None  # the window's base as NVS has it
_clients = 0
_dated = False


def setup():
    global meter, days, total, _nv, _kept
    _nv = NVRAM("energy")
    total = _nv.get_int("total", 0)
    _kept = _nv.get_int("base")
    uart = UART(2, 9600, bits=8, parity=None, stop=1, tx=UART_TX.value, rx=UART_RX.value,
                timeout=0)
    meter = Meter(PZEM(uart), base=_kept)
    loop.later(max(0, _START_MS - loop.uptime_ms()), lambda: loop.every(_TICK_MS, _tick))
    for name, attr, fmt, ha in (("V", "voltage", "%.1f", ("voltage", "V")),
                                ("A", "current", "%.3f", ("current", "A")),
                                ("W", "power", "%.1f", ("power", "W")),
                                ("PowerFactor", "pf", "%.2f", ("power_factor", None, "measurement"))):
        _reading(name, attr, fmt, ha)
    mqtt.pub("Energy", lambda: total, "%d", check_s=60, force_s=1800,
             ha={"device_class": "energy", "unit_of_measurement": "Wh",
                 "state_class": "total_increasing"})
    days = Days(_nv, TZ.value)
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
    if meter.base != _kept:
        _kept = meter.base
        _nv.set_int("base", _kept)  # about twice an hour: at the close and after the reset
    if meter.error != _error:
        _error = meter.error
        if _error:
            log.warn("energy: " + _error)


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
