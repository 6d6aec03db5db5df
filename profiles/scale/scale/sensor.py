# The battery sensor's one cycle per wake: weigh, send one numbered and authenticated
# message to the manager over ESP-NOW, wait for its acknowledgement (a bounded number of
# sends), then deep sleep whatever happened.
import asyncio
import esp32
import machine
import network
from time import ticks_add, ticks_diff, ticks_ms

from epx import config, log, loop, netnow, pins, radio
from epx.nvram import NVRAM
from hx711 import HX711
from scale.safe import SLEEP_MIN
from scale.sequence import Sequence
from scale.weigh import weigh

CHANNEL = radio.channel_key("channel", doc="WiFi channel||6|The manager's access point's channel (see country)")
PMK = config.key("pmk", netnow.key, doc="ESP-NOW primary key||00112233445566778899aabbccddeeff|32 hex digits, as on the manager", secret=True)
MANAGER = config.key("manager", netnow.mac, doc="Manager MAC||24:0a:c4:12:34:56|The scale_manager's")
LMK = config.key("manager_lmk", netnow.key, doc="Manager link key||0f1e2d3c4b5a69788796a5b4c3d2e1f0|32 hex digits: the manager's sensor_lmk", secret=True)
CAL_A = config.key("calibration_a", float, 1.0, "Calibration factor||0.0001|weight = factor x raw reading + offset")
CAL_B = config.key("calibration_b", float, 0.0, "Calibration offset||0|weight = factor x raw reading + offset")
DOUT = pins.key("hx711_dout", pins.IN, doc="HX711 DOUT pin|GPIO||The load cell amplifier's data")
SCK = pins.key("hx711_sck", pins.OUT, doc="HX711 SCK pin|GPIO||The load cell amplifier's clock")
SAMPLES = config.key("samples", config.int_range(1, 15), 5, "Samples||5|Conversions per reading (their median); 1-15")
RETRIES = config.key("retries", config.int_range(0, 10), 3, "Retries||3|Sends per reading when no acknowledgement comes; 0-10")
BATTERY_PIN = config.key("battery_pin", config.int_range(32, 39), None, "Battery ADC pin|GPIO|35|Through a divider; empty: not measured")
BATTERY_RATIO = config.key("battery_ratio", float, 2.0, "Battery divider ratio||2|volts = reading x ratio")

ACK_MS = const(300)


def setup():
    loop.task(cycle())


def battery():
    if BATTERY_PIN.value is None:
        return None
    from machine import ADC

    adc = ADC(machine.Pin(BATTERY_PIN.value), atten=ADC.ATTN_11DB)
    return adc.read_uv() * BATTERY_RATIO.value / 1e6


async def cycle():
    try:
        await report()
    except Exception as e:  # a broken cycle must not keep the battery awake
        log.error("scale: %s: %s" % (type(e).__name__, e))
    # SCK high powers the HX711 down, and only a held pad stays so through deep sleep:
    # unheld it floats and the chip draws its 1.5 mA the whole hour (gpio_deep_sleep_hold
    # for a digital pad; an RTC pad keeps its hold anyway).
    esp32.gpio_deep_sleep_hold(True)
    machine.Pin(SCK.value, machine.Pin.OUT, value=1, hold=True)
    machine.deepsleep(SLEEP_MIN.value * 60000)


async def report():
    machine.Pin(SCK.value, machine.Pin.OUT, value=0, hold=False)  # awake: SCK low, powered up
    hx = HX711(DOUT.value, SCK.value)
    weight, malfunction = await weigh(hx, SAMPLES.value, CAL_A.value, CAL_B.value)
    hx.power_down()
    pairs = [("Malfunction", "%d" % malfunction)]
    if weight is not None:
        pairs.insert(0, ("Weight", "%.3f" % weight))
    volts = battery()
    if volts is not None:
        pairs.append(("Battery", "%.2f" % volts))
    seq = Sequence(NVRAM("scale")).next()
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    link = netnow.start(CHANNEL.value, PMK.value, MANAGER.value, LMK.value, sta)
    flag = asyncio.ThreadSafeFlag()
    link.irq(lambda e: flag.set())
    msg = netnow.pack(netnow.DATA, seq, netnow.encode(pairs), LMK.value)
    start = ticks_ms()
    for attempt in range(1, RETRIES.value + 2):
        try:
            link.send(MANAGER.value, msg)
        except OSError as e:  # no send callback in 100 ms (it may still have gone), or
            log.warn("scale: #%d send %d: %s" % (seq, attempt, e))  # buffers full for 2 s
        if await _acknowledged(link, flag, seq):
            log.info("scale: #%d acknowledged in %d ms (send %d): %s" % (
                seq, ticks_diff(ticks_ms(), start), attempt, pairs))
            return
    log.warn("scale: #%d not acknowledged after %d sends" % (seq, RETRIES.value + 1))


async def _acknowledged(link, flag, seq):
    deadline = ticks_add(ticks_ms(), ACK_MS)
    while True:
        while link.any():
            mac, msg = link.recv(0)
            if mac != MANAGER.value:
                continue
            try:
                kind, number, _ = netnow.unpack(msg, LMK.value)
            except netnow.Refused as e:
                log.warn("scale: reply refused: %s" % e)
                continue
            if kind == netnow.ACK and number == seq:
                return True
        left = ticks_diff(deadline, ticks_ms())
        if left <= 0:
            return False
        try:
            await asyncio.wait_for_ms(flag.wait(), left)
        except asyncio.TimeoutError:
            pass
