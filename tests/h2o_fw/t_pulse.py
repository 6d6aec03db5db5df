# The viper pulse counter under the ESP32's scheduled IRQs (the simulator's: a latency after
# each edge, an 8-deep queue, pauses), against the same pulse trains as the handler it
# replaced, which read the pin level and the time when it ran.
import _simclock
import _simirq
import gc
import micropython
import time
from array import array
from machine import Pin
from time import ticks_us

from epx.pulse import PulseCounter
from fwunit import eq
from sim import ctl

PIN = 14
RATED_HZ = 288  # config.txt.example: maxflow 60 L/min x flowpulserate 4.8
LATENCY_US = 20000
LATENCY, GC = 0, 1  # _simirq.timing indexes


def old_counter(pin, min_width_us):
    """The handler this project shipped before: level and time read when it runs."""
    state = array("i", (0, 0, 0, 0, min_width_us))
    level = pin.value

    @micropython.viper
    def edge(p):
        s = ptr32(state)
        now = int(ticks_us())
        if int(level()):
            s[2] = now
            s[3] = 1
        elif s[3]:
            s[3] = 0
            if ((now - s[2]) & 0x3FFFFFFF) < s[4]:
                s[1] += 1
            else:
                s[0] += 1
        else:
            s[1] += 1

    pin.irq(edge, Pin.IRQ_RISING | Pin.IRQ_FALLING)
    return state


def setup(latency_us, gc_us=0):
    # Device time at a quarter of real time: a host hiccup of the simulator (2 cores shared
    # by many) stays a quarter as long on the device, well inside the queue's margin.
    _simclock.scale(0.25)
    _simirq.timing(LATENCY, latency_us)
    _simirq.timing(GC, gc_us)
    pin = Pin(PIN, Pin.IN)
    Pin._drive(PIN, 0)
    return pin


def train(count, hz=RATED_HZ, gc_every_ms=0):
    """`count` pulses at `hz` from the simulated world (50% duty) while the VM goes about
    its business: sleeping, and collecting garbage every gc_every_ms."""
    _, dropped0, _ = _simirq.stats()
    ctl.pulses({"pin": PIN, "hz": hz, "count": count})
    end = time.ticks_add(time.ticks_ms(), count * 1000 // hz + 100)
    last_gc = time.ticks_ms()
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        time.sleep_ms(1)
        if gc_every_ms and time.ticks_diff(time.ticks_ms(), last_gc) >= gc_every_ms:
            gc.collect()
            last_gc = time.ticks_ms()
    time.sleep_ms(LATENCY_US // 1000 + 50)  # the last handlers run
    return _simirq.stats()[1] - dropped0


def test_the_old_handler_miscounts_under_latency():
    # 20 ms after a 3.5 ms pulse the pin is somewhere in a later pulse: rises and falls
    # are judged on the level then, widths on the time then.
    state = old_counter(setup(LATENCY_US), 868)  # its filter: a quarter period at 60 L/min
    train(200)
    counted = state[0]
    state[4] = 0
    if counted == 200:
        raise AssertionError("the late-reading handler counted right: latency not simulated")
    Pin(PIN).irq(None)


def test_exact_at_rated_frequency_with_20ms_latency():
    pin = setup(LATENCY_US)
    c = PulseCounter(pin)
    eq(train(500), 0, "dropped")
    eq(c.take(), 500)
    eq(c.take(), 0, "take() returns what came since")
    c.close()


def test_exact_with_gc_pauses_on_top_of_latency():
    # Handlers wait for the latency and for gc.collect() (its cost on the chip, simcost.c):
    # together 22 ms, up to 7 pulses queued at 288 Hz.
    gc.collect()
    t = ticks_us()
    gc.collect()
    collect_us = time.ticks_diff(ticks_us(), t)
    if not 500 < collect_us < 20000:
        raise AssertionError("a collection took %d us" % collect_us)
    pin = setup(22000 - collect_us)
    c = PulseCounter(pin)
    eq(train(500, gc_every_ms=50), 0, "dropped")
    eq(c.take(), 500)
    c.close()
    setup(0)


def test_a_burst_beyond_the_queue_is_lost_and_shows_in_the_drops():
    # The port's limit: a pause longer than 8 pulses drops the rest (mp_sched_schedule
    # returns false, the port ignores it): the counter cannot see it, the simulator can.
    pin = setup(0, gc_us=100000)
    c = PulseCounter(pin)
    dropped = train(200, gc_every_ms=200)
    eq(c.take() + dropped, 200)
    if not dropped:
        raise AssertionError("a 100 ms pause at 288 Hz must overflow the 8-deep queue")
    c.close()
    setup(0)


def test_take_is_exact_across_the_32_bit_wrap():
    pin = setup(0)
    c = PulseCounter(pin)
    c._state[0] = 0x7FFFFFFE
    c._taken = 0x7FFFFFFE
    for _ in range(5):
        Pin._drive(PIN, 1)
        Pin._drive(PIN, 0)
    time.sleep_ms(1)
    eq(c.take(), 5)
    c.close()


def test_close_detaches():
    c = PulseCounter(setup(0))
    c.close()
    Pin._drive(PIN, 1)
    Pin._drive(PIN, 0)
    time.sleep_ms(1)
    eq(c.take(), 0)
