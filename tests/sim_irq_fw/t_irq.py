# Scheduled pin IRQs as ports/esp32/machine_pin.c runs them: queued by the ISR in the
# scheduler's 8-deep queue (the 9th dropped), run from the VM after the device's latency,
# held through gc.collect() and flash operations (the cache off: edges latched per pin).
import _simclock
import _simirq
import _thread
import esp32
import gc
import time
from machine import Pin

from fwunit import eq

PIN = 14
LATENCY, GC, TLS, ERASE, WRITE = range(5)  # _simirq.timing indexes


class Log:
    """A handler recording the level and the time it sees when it runs."""

    def __init__(self):
        self.runs = []

    def __call__(self, pin):
        self.runs.append((pin.value(), time.ticks_us()))


def pin_with(log, trigger=Pin.IRQ_RISING, latency_us=0):
    # Device time at a fifth of real time: the simulator's own hiccups on a busy host
    # shrink five times on the device's clock.
    _simclock.scale(0.2)
    for i in range(5):
        _simirq.timing(i, 0)
    _simirq.timing(LATENCY, latency_us)
    p = Pin(PIN, Pin.IN)
    Pin._drive(PIN, 0)
    p.irq(log, trigger)
    return p


def pulse():
    Pin._drive(PIN, 1)
    Pin._drive(PIN, 0)


def settle(ms=5):
    time.sleep_ms(ms)


def test_queue_holds_8_and_drops_the_9th():
    log = Log()
    p = pin_with(log, latency_us=1000000)  # nothing runs while the test fills the queue
    _, dropped0, _ = _simirq.stats()
    for _ in range(9):
        pulse()
    queued, dropped, held = _simirq.stats()
    eq((queued, dropped - dropped0, held), (8, 1, True))
    eq(log.runs, [], "handlers wait for the latency")
    _simclock.advance(1000)
    settle()
    eq(len(log.runs), 8, "the 9th edge was dropped")
    pulse()  # room again
    _simclock.advance(1000)
    settle()
    eq(len(log.runs), 9)
    p.irq(None)


def test_handler_runs_after_the_latency_and_sees_the_pin_then():
    log = Log()
    p = pin_with(log, latency_us=20000)
    t0 = time.ticks_us()
    Pin._drive(PIN, 1)
    settle(5)
    Pin._drive(PIN, 0)  # the pulse is over before its handler runs
    eq(log.runs, [])
    settle(30)
    eq(len(log.runs), 1)
    level, t = log.runs[0]
    eq(level, 0, "the level when the handler runs, not at the edge")
    if time.ticks_diff(t, t0) < 20000:
        raise AssertionError("ran %d us after the edge" % time.ticks_diff(t, t0))
    p.irq(None)


def test_edges_stamped_in_device_time():
    # An edge the world made 15 ms ago (a late thread) is due 5 ms from now, not 20.
    log = Log()
    p = pin_with(log, latency_us=20000)
    g = p._g
    g.ext = 1
    t0 = time.ticks_us()
    g.update(False, 15000)
    settle(10)
    eq(len(log.runs), 1)
    if time.ticks_diff(log.runs[0][1], t0) >= 15000:
        raise AssertionError("the edge's time was not taken into account")
    Pin._drive(PIN, 0)
    p.irq(None)


def world(edges, gap_ms, started):
    # The first edge 10 ms (device) after the start: the VM is in its pause by then.
    started.append(1)
    time.sleep_ms(10)
    for _ in range(edges):
        pulse()
        time.sleep_ms(gap_ms)


def test_gc_collect_holds_handlers_and_isrs_still_queue():
    log = Log()
    p = pin_with(log)
    _simirq.timing(GC, 50000)
    started = []
    _thread.start_new_thread(world, (5, 5, started))
    while not started:
        time.sleep_ms(0)
    t0 = time.ticks_us()
    gc.collect()  # 50 ms of device time: the world's 5 edges come in it
    t1 = time.ticks_us()
    if time.ticks_diff(t1, t0) < 50000:
        raise AssertionError("gc.collect took %d us" % time.ticks_diff(t1, t0))
    settle(40)
    eq(len(log.runs), 5, "every edge queued during the pause")
    for _, t in log.runs:
        if time.ticks_diff(t, t1) < 0:
            raise AssertionError("a handler ran during gc.collect")
    p.irq(None)


def test_flash_erase_with_the_cache_off_latches_one_edge_per_pin():
    # The GPIO ISR service is not in IRAM: while the cache is off the status bit holds the
    # edge, and the ISR runs once when the cache is back, however many edges there were.
    log = Log()
    p = pin_with(log)
    _simirq.timing(ERASE, 60000)
    started = []
    _thread.start_new_thread(world, (5, 5, started))
    while not started:
        time.sleep_ms(0)
    f = esp32._flash_file()  # the device's flash: a host file of the size the test made
    t0 = time.ticks_us()
    esp32._flash_erase(0x3FF000, 4096)
    t1 = time.ticks_us()
    if time.ticks_diff(t1, t0) < 60000:
        raise AssertionError("the erase took %d us" % time.ticks_diff(t1, t0))
    settle(40)
    eq(len(log.runs), 1, "one ISR for the edges latched with the cache off")
    # Without the cache off (no erase) the same edges each run the handler.
    _thread.start_new_thread(world, (5, 5, started))
    settle(60)
    eq(len(log.runs), 6)
    p.irq(None)


def test_timing_is_checked():
    try:
        _simirq.timing(LATENCY, -1)
    except ValueError:
        pass
    else:
        raise AssertionError("a negative latency was taken")


def busy_us(masked):
    # Device time over a stretch of work: what it costs the chip, however long the host takes.
    import gc
    import machine
    gc.collect()  # no collection inside: the same work each time
    state = machine.disable_irq() if masked else None
    t0 = time.ticks_us()
    n = 0
    for i in range(60000):
        n = (n + i) & 0xFFFF
    t1 = time.ticks_us()
    if masked:
        machine.enable_irq(state)
    return time.ticks_diff(t1, t0)


def test_masked_interrupts_cost_what_they_compute():
    # With interrupts masked the ESP32's CPU is not preempted: the work is device time all
    # the same, and the same work takes the same device time each run (simcost.c), masked
    # or not, on any host.
    _simclock.scale(1)
    masked, unmasked, again = busy_us(True), busy_us(False), busy_us(False)
    if masked <= 0:
        raise AssertionError("masked work took no device time")
    # 60000 small-int additions at 80-240 MHz: tens to hundreds of ms.
    if not 10000 < unmasked < 1000000:
        raise AssertionError("unmasked work took %d us" % unmasked)
    if abs(masked - unmasked) > unmasked // 100 or abs(again - unmasked) > 1:
        raise AssertionError("the same work took %d, %d and %d us" % (masked, unmasked, again))
    t0 = time.ticks_us()
    settle(5)
    if time.ticks_diff(time.ticks_us(), t0) < 5000:
        raise AssertionError("the clock did not flow while the firmware waited")
