# Scenarios for tests/test_sim_firmware*.py. The test picks one with SIMCHECK=<name>
# (test firmware only) and reads the "simcheck:" lines it prints.
import json
import time
import uos


def say(**fields):
    print("simcheck:", json.dumps(fields))


def nvs():
    import esp32

    nv = esp32.NVS("simcheck")
    try:
        nv.get_i32("missing")
    except OSError as e:
        say(missing=list(e.args))
    boots = 0
    try:
        boots = nv.get_i32("boots")
    except OSError:
        pass
    nv.set_i32("boots", boots + 1)
    nv.set_blob("blob", b"\x00\x01abc")
    buf = bytearray(8)
    n = nv.get_blob("blob", buf)
    try:
        nv.get_blob("blob", bytearray(2))
    except OSError as e:
        say(short=list(e.args))
    try:
        nv.get_i32("blob")
    except OSError as e:
        say(wrong_type=list(e.args))
    nv.commit()
    say(boots=boots, blob=list(buf[:n]))


def partition():
    import esp32
    from esp32 import Partition

    vfs = Partition.find(Partition.TYPE_DATA, label="vfs")[0]
    running = Partition(Partition.RUNNING)
    nxt = running.get_next_update()
    buf = bytearray(4096)
    nxt.writeblocks(1, b"\x5a" * 4096)
    nxt.readblocks(1, buf)
    ok = buf == b"\x5a" * 4096
    nxt.writeblocks(1, b"\x0f\xf0", 10)  # no erase: bits only clear
    part = bytearray(2)
    nxt.readblocks(1, part, 10)
    with open("/hello.txt", "a") as f:
        f.write("x")
    with open("/hello.txt") as f:
        hello = f.read()
    say(vfs=list(vfs.info()), running=running.info()[4], next=nxt.info()[4], ok=ok,
        nor=list(part), hello=hello, files=sorted(uos.listdir("/")),
        blocks=vfs.ioctl(4, 0), apps=[p.info()[4] for p in Partition.find(Partition.TYPE_APP)])


def set_boot():
    from esp32 import Partition

    nxt = Partition(Partition.RUNNING).get_next_update()
    try:
        nxt.set_boot()
    except OSError as e:
        say(invalid=list(e.args))
    say(ready=1)
    while True:  # the test writes a valid image, then asks again
        time.sleep_ms(10)


def mark_valid():
    from esp32 import Partition

    Partition.mark_app_valid_cancel_rollback()
    say(boot=Partition(Partition.BOOT).info()[4])


def wdt():
    from machine import WDT

    w = WDT(timeout=2000)
    w.feed()
    say(fed=time.ticks_ms())
    while True:
        time.sleep_ms(10)


def wdtloop():
    # An asyncio loop feeds a 2 s watchdog every 500 ms until input 4 is high, then turns on
    # without feeding.
    import asyncio
    from machine import WDT, Pin

    w = WDT(timeout=2000)
    stop = Pin(4, Pin.IN)

    async def main():
        while not stop.value():
            w.feed()
            fed = time.ticks_ms()
            await asyncio.sleep_ms(500)
        say(stopped=fed)
        while True:
            await asyncio.sleep_ms(100)

    say(armed=1)
    asyncio.run(main())


def deepsleep():
    import machine

    say(cause=machine.reset_cause(), wake=machine.wake_reason())
    machine.deepsleep(60000)


def reset():
    import machine

    rtc = machine.RTC()
    say(rtc=list(rtc.memory()))
    try:
        rtc.memory(bytes(2049))
    except ValueError as e:
        say(too_long=str(e))
    rtc.memory(rtc.memory() + b"r")
    machine.reset()


def pins():
    import micropython
    from machine import Pin

    hits = []

    def on_edge(pin):
        hits.append(pin.value())
        say(irq=len(hits), value=pin.value())

    button = Pin(4, Pin.IN, Pin.PULL_UP)
    button.irq(on_edge, Pin.IRQ_FALLING)
    led = Pin(2, Pin.OUT, value=0)
    say(ready=button.value())
    while len(hits) < 2:
        time.sleep_ms(1)
    led.on()
    led.off()
    say(done=hits)
    while True:
        time.sleep_ms(10)


def i2c():
    from machine import I2C, Pin

    bus = I2C(0, scl=Pin(22), sda=Pin(21))
    say(scan=bus.scan())
    try:
        bus.readfrom(0x51, 1)
    except OSError as e:
        say(absent=list(e.args))
    say(regs=list(bus.readfrom_mem(0x40, 0x10, 2)))
    bus.writeto_mem(0x40, 0x20, b"\x07\x08")
    say(written=1)
    while True:
        try:
            bus.readfrom_mem(0x40, 0x10, 1)
        except OSError as e:
            say(stuck=e.args[0])
            break
        time.sleep_ms(5)
    while True:
        time.sleep_ms(10)


def clock():
    say(t=time.ticks_ms())
    while True:
        time.sleep_ms(1000)
        say(t=time.ticks_ms())


def busy():
    say(busy=1)
    n = 0
    while True:
        n += 1


def net():
    import network
    import socket

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    try:
        socket.getaddrinfo("localhost", 1883)
    except OSError as e:
        say(dns_down=list(e.args))
    wlan.connect("epx", "secret")
    while wlan.status() == network.STAT_CONNECTING:
        time.sleep_ms(10)
    say(status=wlan.status(), mac=wlan.config("mac").hex())
    port = int(uos.getenv("SIMCHECK_PORT"))
    while not wlan.isconnected():
        time.sleep_ms(10)
    addr = socket.getaddrinfo("127.0.0.1", port)[0][-1]
    s = socket.socket()
    s.connect(addr)
    s.write(b"hello\n")
    say(connected=addr, ifconfig=wlan.ifconfig()[0])
    while wlan.isconnected():
        time.sleep_ms(10)
    try:
        s.write(b"more\n")
        say(write="ok")
    except OSError as e:
        say(write=e.args[0])
    # The port reports a beacon timeout as "connecting" while its driver retries; the
    # retry's own reason comes with the next failed attempt.
    say(lost=wlan.status())
    while wlan.status() == network.STAT_CONNECTING:
        time.sleep_ms(10)
    say(status=wlan.status())
    while True:
        time.sleep_ms(10)


def answer():
    # One question an hour into device time (the host walks there), its answer awaited 5 s
    # of device time: how long (device ms) it took, or None if the wait ran out.
    import network
    import select
    import socket

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect("epx", "secret")
    while not wlan.isconnected():
        time.sleep_ms(10)
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", int(uos.getenv("SIMCHECK_PORT")))[0][-1])
    say(connected=1)
    time.sleep_ms(3_600_000)
    p = select.poll()
    p.register(s, select.POLLIN)
    t = time.ticks_ms()
    s.write(b"ask\n")
    got = p.poll(5000)
    say(answered=s.readline().decode() if got else None, ms=time.ticks_diff(time.ticks_ms(), t))
    while True:
        time.sleep_ms(1000)


def espnow():
    import network
    import espnow as en

    network.WLAN(network.STA_IF).active(True)
    e = en.ESPNow()
    e.active(True)
    peer = b"\x24\x0a\xc4\x00\x00\x02"
    try:
        e.send(peer, b"x")
    except OSError as err:
        say(unknown=list(err.args))
    e.add_peer(peer)
    ok = e.send(peer, b"ping")
    away = b"\x24\x0a\xc4\x00\x00\x03"
    e.add_peer(away)
    lost = e.send(away, b"nobody")
    unsync = e.send(away, b"nobody", False)
    e.add_peer(b"\xff" * 6)
    everyone = e.send(b"\xff" * 6, b"all")
    say(sent=[ok, lost, unsync, everyone], stats=list(e.stats()[:3]))
    host, msg = e.recv(5000)
    say(got=msg.decode() if msg else None, host=host.hex() if host else None)
    while True:
        time.sleep_ms(10)


def espnow_trouble():
    # Four sends to one peer, each meeting what the host's medium scripted for it.
    import network
    import espnow as en

    network.WLAN(network.STA_IF).active(True)
    e = en.ESPNow()
    e.active(True)
    peer = b"\x24\x0a\xc4\x00\x00\x02"
    e.add_peer(peer)
    out = []
    for _ in range(4):
        t = time.ticks_ms()
        try:
            r = e.send(peer, b"x")
        except OSError as err:
            r = list(err.args)
        out.append([r, time.ticks_diff(time.ticks_ms(), t)])
    time.sleep_ms(100)
    say(trouble=out, stats=list(e.stats()[:3]))
    while True:
        time.sleep_ms(10)


def run():
    globals()[uos.getenv("SIMCHECK")]()


def pulses():
    from machine import Pin

    count = [0]

    def on_pulse(pin):
        count[0] += 1

    Pin(27, Pin.IN).irq(on_pulse, Pin.IRQ_RISING)
    say(ready=1)
    while True:
        time.sleep_ms(100)
        say(pulses=count[0], t=time.ticks_ms())


def uart():
    from machine import UART

    u = UART(2, 9600, timeout=100)
    u.write(b"\x01\x04")
    say(reply=list(u.read(3) or b""))
    u2 = UART(1, 115200, timeout=0)
    say(empty=u2.read())
    while not u2.any():
        time.sleep_ms(1)
    say(line=u2.readline().decode())
    u2.write(b"ok\n")
    say(sent=1)
    while True:
        time.sleep_ms(10)


def soft():
    import sys
    import machine

    say(cause=machine.reset_cause())
    sys.exit()


def adc():
    from machine import ADC, Pin

    a = ADC(Pin(35), atten=ADC.ATTN_11DB)
    say(uv=a.read_uv())
    while a.read_uv() < 3000000:
        time.sleep_ms(1)
    say(uv=a.read_uv(), raw=a.read())
    while True:
        time.sleep_ms(10)


# The RTC's wall clock across resets: each boot says it (with the device clock), sets it once
# if it still counts from 2000, then resets the way its scenario names.
_RTC_SET = (2025, 6, 1, 6, 12, 0, 0, 0)  # a Sunday (weekday 6)


def _rtc(then):
    import machine

    rtc = machine.RTC()
    t, ticks = time.time(), time.ticks_ms()
    say(rtc=list(rtc.datetime()), time=t, ticks=ticks, gmtime=list(time.gmtime()))
    if time.gmtime()[0] == 2000:
        try:
            rtc.datetime(_RTC_SET[:7])
        except ValueError as e:
            say(short=str(e))
        rtc.datetime(_RTC_SET)
        say(set=time.time(), ticks=time.ticks_ms())
    if then == "soft":
        machine.soft_reset()
    elif then == "wdt":
        machine.WDT(timeout=1000)
        say(wdt=1)
    elif then == "reset":
        machine.reset()
    elif then == "sleep":
        machine.deepsleep(60000)
    while True:
        time.sleep_ms(10)


def rtc_soft():
    _rtc("soft")


def rtc_wdt():
    _rtc("wdt")


def rtc_reset():
    _rtc("reset")


def rtc_sleep():
    _rtc("sleep")


def rtc_idle():
    _rtc("idle")


def nvs_strict():
    # esp32_nvs.c's conversions and ESP-IDF's NVS limits, each error as the port raises it
    import esp32

    nv = esp32.NVS("strict")
    errors = {}

    def attempt(name, f, *args):
        try:
            f(*args)
            errors[name] = None
        except Exception as e:
            errors[name] = [type(e).__name__] + list(e.args)

    attempt("i32_max", nv.set_i32, "big", 0x7FFFFFFF)
    attempt("i32_over", nv.set_i32, "big", 0x80000000)
    attempt("i32_under", nv.set_i32, "big", -0x80000001)
    attempt("i32_float", nv.set_i32, "big", 1.5)
    attempt("i32_str", nv.set_i32, "big", "1")
    attempt("key_int", nv.set_i32, 7, 1)
    attempt("key_15", nv.set_i32, "k" * 15, 15)
    attempt("key_16", nv.set_i32, "k" * 16, 16)
    attempt("ns_16", esp32.NVS, "n" * 16)
    attempt("blob_int", nv.set_blob, "b", 5)
    attempt("blob_max", nv.set_blob, "b", bytes(5 * 4000))
    attempt("blob_over", nv.set_blob, "b", bytes(5 * 4000 + 1))
    attempt("into_bytes", nv.get_blob, "b", bytes(8))
    attempt("into_short", nv.get_blob, "b", bytearray(8))
    say(errors=errors, big=nv.get_i32("big"), k15=nv.get_i32("k" * 16))


def freq_strict():
    # machine.freq as extmod/modmachine.c:machine_freq and ports/esp32/modmachine.c take it;
    # each attempt with the clock it leaves
    import machine

    got = {}

    def attempt(name, *args, **kw):
        try:
            machine.freq(*args, **kw)
            got[name] = [None, machine.freq()]
        except Exception as e:
            got[name] = [type(e).__name__] + list(e.args) + [machine.freq()]

    attempt("hz_80", 80000000)
    attempt("hz_240_and_change", 240999999)
    attempt("hz_100", 100000000)
    attempt("hz_just_under_80", 79999999)
    attempt("mhz_not_hz", 80)
    attempt("float", 160e6)
    attempt("negative", -80000000)
    attempt("over_a_word", 0x80000000 * 100)
    attempt("keyword", hz=80000000)
    attempt("two", 80000000, 0)
    say(freq=got)


def hold():
    # Pad hold (machine_pin.c, gpio_hold_en): writes to a held pad do nothing until released
    import machine
    from machine import Pin

    step = machine.RTC().memory()
    if not step:
        led = Pin(5, Pin.OUT, value=1, hold=True)
        led.value(0)
        held = led.value()
        led.init(hold=False)  # the outstanding write applies now
        released = led.value()
        Pin(5, Pin.OUT, value=1, hold=True)
        Pin(18, Pin.OUT, value=1, hold=True)  # a digital (non-RTC) pad
        Pin(25, Pin.OUT, value=1, hold=True)  # an RTC pad
        say(held=held, released=released)
        machine.RTC().memory(b"1")
        machine.reset()
    elif step == b"1":
        # after a reset the pads are still held; reconfiguring does nothing yet
        Pin(5, Pin.OUT, value=0)
        say(after_reset=[Pin(5).value(), Pin(18).value(), Pin(25).value()])
        machine.RTC().memory(b"2")
        machine.deepsleep(1000)
    else:
        # deep sleep kept the RTC pad only (no esp32.gpio_deep_sleep_hold(True))
        say(after_sleep=[Pin(5).value(), Pin(18).value(), Pin(25).value()])


def blank_otadata():
    # No otadata entry (a serial flash): ESP-IDF's "Running firmware is factory", ESP_FAIL
    from esp32 import Partition

    try:
        Partition.mark_app_valid_cancel_rollback()
        say(blank=None)
    except OSError as e:
        say(blank=list(e.args))
