# The viper pulse counter on a simulated GPIO: widths, glitches, reads racing the IRQ.
import _simclock
import time
from machine import Pin, disable_irq, enable_irq

from epx.pulse import PulseCounter
from fwunit import eq

PIN = 14


def settle():
    # Scheduled (soft) IRQ handlers run when the VM next checks: here.
    time.sleep_ms(0)


def edge(level):
    Pin._drive(PIN, level)
    settle()


def pulse(width_ms):
    edge(1)
    if width_ms:
        _simclock.advance(width_ms)
    edge(0)


def counter(min_us=1000):
    pin = Pin(PIN, Pin.IN)
    Pin._drive(PIN, 0)
    return PulseCounter(pin, min_us)


def test_counts_pulses_at_least_min_width():
    c = counter(1000)
    for _ in range(5):
        pulse(2)
    eq(c.take(), (5, 0))
    eq(c.take(), (0, 0), "take() clears")
    c.close()


def test_rejects_short_pulses():
    c = counter(1000)
    pulse(2)
    pulse(0)  # microseconds wide
    pulse(2)
    pulse(0)
    eq(c.take(), (2, 2))
    c.close()


def test_spike_over_before_handler():
    # Both edges queued before the handler runs: it sees the pin low, no rise: rejected.
    c = counter(1000)
    Pin._drive(PIN, 1)
    Pin._drive(PIN, 0)
    settle()
    counted, rejected = c.take()
    eq(counted, 0)
    eq(rejected > 0, True, "rejected")
    c.close()


def test_edge_while_masked_is_delivered_after():
    c = counter(1000)
    state = disable_irq()
    Pin._drive(PIN, 1)
    settle()
    eq(c.take(), (0, 0))
    enable_irq(state)
    settle()
    _simclock.advance(2)
    edge(0)
    eq(c.take(), (1, 0))
    c.close()


def test_take_during_a_pulse_loses_nothing():
    c = counter(1000)
    edge(1)
    _simclock.advance(2)
    eq(c.take(), (0, 0))
    edge(0)
    eq(c.take(), (1, 0))
    c.close()


def test_close_detaches():
    c = counter(1000)
    c.close()
    pulse(2)
    eq(c.take(), (0, 0))
