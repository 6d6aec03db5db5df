# A TLS handshake stops the VM for tls_us (the key exchange on a device): handlers of edges
# in it wait, ISRs still queue. The server is the host's (SIM_IRQ_TLS_PORT).
import _simclock
import _simirq
import _thread
import time
import tls
import uos
import usocket
from machine import Pin

from fwunit import eq

PIN = 14
LATENCY, GC, TLS = 0, 1, 2
PAUSE_US = 200000


def world(edges, gap_ms, started):
    started.append(1)
    for _ in range(edges):
        Pin._drive(PIN, 1)
        Pin._drive(PIN, 0)
        time.sleep_ms(gap_ms)


def test_handlers_wait_for_the_handshake():
    _simclock.scale(0.2)
    _simirq.timing(LATENCY, 0)
    _simirq.timing(TLS, PAUSE_US)
    runs = []
    p = Pin(PIN, Pin.IN)
    Pin._drive(PIN, 0)
    p.irq(lambda pin: runs.append(time.ticks_us()), Pin.IRQ_RISING)
    port = int(uos.getenv("SIM_IRQ_TLS_PORT"))
    s = usocket.socket()
    s.connect(usocket.getaddrinfo("127.0.0.1", port)[0][-1])
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_NONE
    started = []
    _thread.start_new_thread(world, (12, 40, started))  # 480 ms of edges around the pause
    while not started:
        time.sleep_ms(0)
    t0 = time.ticks_us()
    c = ctx.wrap_socket(s, server_hostname="localhost")
    t1 = time.ticks_us()
    c.write(b"bye")
    c.close()
    time.sleep_ms(600)
    if time.ticks_diff(t1, t0) < PAUSE_US:
        raise AssertionError("the handshake took %d us" % time.ticks_diff(t1, t0))
    inside = [t for t in runs if 0 < time.ticks_diff(t1, t) < PAUSE_US]
    eq(inside, [], "no handler runs in the handshake's pause")
    eq(len(runs), 12, "edges in the pause queued, none lost (5 of 8)")
    p.irq(None)
