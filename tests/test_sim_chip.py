"""The simulated chip's resources against the pinned port, ESP-IDF and the datasheets:
pads through deep sleep (and what the chips on them draw meanwhile)."""

import json

import pytest

from epx import build
from fwcode import run_code

EXIT_DEEPSLEEP = 12

# Device time frozen (a microsecond per real second): only advance() moves it. The sleep
# report goes to the host as an event; here it is printed.
PRELUDE = """
import json, machine, esp32, network, sim, _simclock
from sim import models
_simclock.scale(1e-6)
sim.emit = lambda event, **f: print(json.dumps(dict(f, event=event)))
"""


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("coreunit")[0]


def sleep_report(fw, tmp_path, code):
    (tmp_path / "run").mkdir()
    r = run_code(fw, PRELUDE + code, tmp_path)
    assert r.returncode == EXIT_DEEPSLEEP, r.stdout + r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return [e for e in events if e["event"] == "sleep"][-1]


@pytest.mark.parametrize("hold,deep_sleep_hold", [(False, False), (True, False), (True, True)],
                         ids=["no hold", "hold", "hold, gpio_deep_sleep_hold"])
def test_pads_float_through_deep_sleep_unless_held(fw, tmp_path, hold, deep_sleep_hold):
    """Deep sleep powers the digital domain off: an output that is not held floats
    (machine_pin.c: `hold=True` is gpio_hold_en). An RTC GPIO (33) stays held; a digital
    one (5) only with esp32.gpio_deep_sleep_hold(True) (modesp32.c:
    gpio_deep_sleep_hold_en). Two HX711s with SCK on those pads draw their operating
    current (datasheet: < 1.5 mA) unless SCK is high through the sleep (power-down,
    < 1 uA)."""
    report = sleep_report(fw, tmp_path, f"""
models.attach("pins", "HX711", args={{"dout": 32, "sck": 33}}, name="rtc")
models.attach("pins", "HX711", args={{"dout": 18, "sck": 5}}, name="digital")
esp32.gpio_deep_sleep_hold({deep_sleep_hold})
machine.Pin(33, machine.Pin.OUT, value=1, hold={hold})
machine.Pin(5, machine.Pin.OUT, value=1, hold={hold})
w = network.WLAN(network.STA_IF)
_simclock.advance(200)
w.active(True)
_simclock.advance(700)
w.active(False)
_simclock.advance(100)
machine.deepsleep(60000)
""")
    rtc = 1 if hold else None
    digital = 1 if hold and deep_sleep_hold else None
    assert report["pads"]["33"] == rtc and report["pads"]["5"] == digital
    assert report["ua"] == {"rtc": 1 if rtc else 1500, "digital": 1 if digital else 1500}
    assert report["ms"] == 60000
    assert 1000 <= report["awake_ms"] <= 1010 and report["radio_ms"] == 700


def test_nvs_handles_are_held_until_reset(fw, tmp_path):
    """nvs_open (ESP-IDF nvs_api.cpp: nvs_open_from_partition) allocates an NVSHandleSimple
    and an NVSHandleEntry on the IDF heap; only nvs_close frees them, and the port's NVS
    (esp32_nvs.c) has no close and no finaliser: every esp32.NVS() made, even of the same
    namespace and dropped at once, holds its 48 bytes until the chip resets. When the
    heap has no room, ESP_ERR_NO_MEM, which check_esp_err raises as OSError(ENOMEM)."""
    r = run_code(fw, """
import esp32, gc, json
from sim import ctl
free = lambda: esp32.idf_heap_info(esp32.HEAP_DATA)[0][1]
before = free()
esp32.NVS("epx")
esp32.NVS("epx")
gc.collect()
seen = [ctl.state({})["nvs_handles"], before - free()]
n = 2
try:
    while True:
        esp32.NVS("epx")
        n += 1
except OSError as e:
    seen += [n, e.args[0], e.args[1], free() < 48]
print(json.dumps(seen))
""", tmp_path)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out[:2] == [2, 96]
    assert out[2] == 61440 // 48 and out[3:] == [12, "ESP_ERR_NO_MEM", True]


def test_gpio_36_and_39_glitch_with_the_adc_and_wifi_modem_sleep(fw, tmp_path):
    """ESP32 errata 3.11 (ESP-IDF's gpio.h warns off interrupts on them): GPIO 36 and 39
    are pulled down ~80 ns when the SAR ADC powers up (each conversion) and when WiFi in
    modem sleep wakes for a beacon (102.4 ms): a high input falls and rises. GPIO 34 is
    spared; without modem sleep (PM_NONE) the radio stays up and nothing glitches."""
    r = run_code(fw, PRELUDE + """
import time
from machine import ADC, Pin
calls = {36: 0, 39: 0, 34: 0}
def on(pin):
    calls[int(str(pin)[4:-1])] += 1
for n in (36, 39, 34):
    Pin(n, Pin.IN, Pin.PULL_UP).irq(on, Pin.IRQ_RISING)
adc = ADC(Pin(32))
for _ in range(3):
    adc.read()
for _ in range(20000):  # the VM runs the scheduled handlers
    pass
seen = [dict(calls)]
_simclock.scale(1)  # the clock runs: the beacons come from a thread on it
w = network.WLAN(network.STA_IF)
w.active(True)
t = time.ticks_ms()
time.sleep_ms(1100)
seen += [dict(calls), time.ticks_diff(time.ticks_ms(), t)]
w.config(pm=w.PM_NONE)
time.sleep_ms(500)
seen.append(dict(calls))
print(json.dumps(seen))
""", tmp_path)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    first, second, ms, third = ({int(k): v for k, v in d.items()} if isinstance(d, dict) else d
                                for d in out)
    assert first == {36: 3, 39: 3, 34: 0}
    beacons = second[36] - 3
    assert abs(beacons - ms / 102.4) <= 1.5 and second[39] == second[36] and second[34] == 0
    assert third[36] - second[36] <= 1 and third[34] == 0


def test_a_bouncing_contact_makes_and_breaks_before_it_settles(fw, tmp_path):
    """The world's pulse train with `bounce_ms`: every transition of a reed contact makes
    and breaks 1-3 more times within 1-5 ms before it settles: each pulse gives 3 to 7
    rising edges, and the line ends where the pulse put it."""
    r = run_code(fw, PRELUDE + """
import time
from machine import Pin
from sim import ctl
rising = [0]
def on(pin):
    rising[0] += 1
p = Pin(27, Pin.IN)
p.irq(on, Pin.IRQ_RISING)
_simclock.scale(1)
ctl.pulses({"pin": 27, "hz": 10, "count": 5, "bounce_ms": [1, 5]})
time.sleep_ms(700)
print(json.dumps([rising[0], p.value()]))
""", tmp_path)
    rising, level = json.loads(r.stdout.strip().splitlines()[-1])
    assert 15 <= rising <= 35 and level == 0


def test_lwip_has_ten_sockets(fw, tmp_path):
    """CONFIG_LWIP_MAX_SOCKETS is ESP-IDF's default 10 (the port's sdkconfig.base leaves
    it): a socket() past it is ENFILE after one more try behind gc.collect()
    (modsocket.c:socket_make_new); an accept() past it too, and lwIP drops the connection
    it had (lwip_accept: netconn_delete); a closed socket's entry is free again."""
    r = run_code(fw, PRELUDE + """
import socket
from sim import ctl
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("epx-sim")
_simclock.advance(100)
def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return e.args[0]
server = socket.socket()
server.bind(("0.0.0.0", 80))
server.listen(2)
port = ctl.net_ports({})["tcp:80"]
held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(9)]
seen = [ctl.state({})["sockets"], err(socket.socket)]
import usocket
peer = usocket.socket()
peer.connect(usocket.getaddrinfo("127.0.0.1", port)[0][-1])
seen.append(err(server.accept))
seen.append(peer.recv(10))  # the connection lwIP dropped: closed
held.pop().close()
s = socket.socket()
seen += [ctl.state({})["sockets"], err(socket.socket)]
print(json.dumps(seen))
""", tmp_path)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == [10, 23, 23, "", 10, 23]


def test_name_resolution_takes_device_time_and_gives_up_as_lwip(fw, tmp_path):
    """lwIP's resolver (core/dns.c: DNS_MAX_RETRIES 4, DNS_TMR_INTERVAL 1 s) asks a server
    at 0, 1, 2, 4 and gives it up at 7 s, then the next: a name takes the world's answer
    time, and with no answer within 7 s a server, 7 s each, then EAI_FAIL (-202, as
    modsocket.c raises it); getaddrinfo blocks meanwhile. An address needs no server."""
    r = run_code(fw, PRELUDE + """
import socket, time
from sim import ctl
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("epx-sim")
_simclock.advance(100)
_simclock.scale(100)
def timed(host):
    t = time.ticks_ms()
    try:
        got = socket.getaddrinfo(host, 80)[0][-1][0]
    except OSError as e:
        got = e.args[0]
    return [got, time.ticks_diff(time.ticks_ms(), t)]
seen = [timed("localhost")]
ctl.wifi_set({"dns_ms": 3000})
seen += [timed("localhost"), timed("10.0.0.1")]
ctl.wifi_set({"dns_ms": 8000, "dns_servers": 2})
seen.append(timed("localhost"))
print(json.dumps(seen))
""", tmp_path)
    (fast, ms0), (slow, ms1), (literal, ms2), (lost, ms3) = json.loads(
        r.stdout.strip().splitlines()[-1])
    assert fast == slow == "127.0.0.1" and literal == "10.0.0.1" and lost == -202
    assert ms0 < 500 and 3000 <= ms1 < 3500 and ms2 < 500 and 14000 <= ms3 < 14500


def test_setsockopt_takes_the_ports_options_only(fw, tmp_path):
    """modsocket.c:socket_setsockopt: SO_REUSEADDR, SO_BROADCAST and TCP_NODELAY go to
    lwIP; any other option prints lwIP's warning and does nothing."""
    r = run_code(fw, PRELUDE + """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.setsockopt(socket.SOL_SOCKET, 9, 1)  # SO_KEEPALIVE on Linux: not the port's
print(json.dumps("done"))
""", tmp_path)
    lines = r.stdout.strip().splitlines()
    assert lines == ["Warning: lwip.setsockopt() option not implemented", '"done"']


def test_the_c_stack_is_measured_at_each_entry_into_the_port(fw, tmp_path):
    """micropython.stack_use() at each entry into a simulated module (here Pin.value):
    the high-water follows how deep the caller is, as the ESP32's 16 KB task would."""
    r = run_code(fw, PRELUDE + """
from machine import Pin
p = Pin(2, Pin.OUT)
def deep(n):
    return p.value() if n == 0 else deep(n - 1)
deep(5)
shallow = sim.stack_high
deep(40)
print(json.dumps([shallow, sim.stack_high]))
""", tmp_path)
    shallow, deeper = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0 < shallow and deeper - shallow >= 35 * 32  # each Python call takes C stack


# The ESP32's limit on the VM's C stack: ports/esp32/main.c starts the VM in a task of
# MICROPY_TASK_STACK_SIZE (16 KB, mpconfigport.h) with mp_cstack_init_with_top, which stops
# recursion MICROPY_STACK_CHECK_MARGIN (1 KB) short of it.
ESP32_STACK_LIMIT = 16 * 1024 - 1024

RECURSE = """
import micropython, _simstack
def recurse(n, depths):
    depths.append(micropython.stack_use())
    return 0 if n == 0 else recurse(n - 1, depths) + 1
def deepest(depths):
    try:
        recurse(1000, depths)
    except RuntimeError as e:
        return str(e)
"""


def test_product_recursion_stops_at_the_esp32_tasks_limit(fw, tmp_path):
    """A recursion the host's 80000 bytes hold raises the port's RuntimeError once the
    product's own depth reaches 15 KB (from where main.py starts, here `_simstack.start`)."""
    r = run_code(fw, PRELUDE + RECURSE + f"""
_simstack.start(0)  # no limit but the host's
host = []
recurse(150, host)
_simstack.start({ESP32_STACK_LIMIT})
base = micropython.stack_use()
chip = []
error = deepest(chip)
print(json.dumps([host[-1] - host[0], len(host), error, chip[-1] - base, len(chip),
                  chip[1] - chip[0]]))
""", tmp_path)
    host_span, host_levels, error, span, levels, frame = json.loads(r.stdout.splitlines()[-1])
    assert host_levels == 151 and host_span > 2 * ESP32_STACK_LIMIT  # the host holds it
    assert error == "maximum recursion depth exceeded" and levels < host_levels / 2
    assert ESP32_STACK_LIMIT - frame <= span < ESP32_STACK_LIMIT + frame


def test_callbacks_are_charged_the_products_depth_not_the_simulators(fw, tmp_path):
    """A scheduled callback (micropython.schedule, a pin's IRQ handler) runs where the VM
    was: inside the simulator's frames when the product called into a simulated module,
    which the ESP32 runs in C. Those frames are not charged: the callback may go exactly as
    deep as one run from the product's own frame, and its deepest is in the high-water."""
    r = run_code(fw, PRELUDE + RECURSE + f"""
_simstack.start({ESP32_STACK_LIMIT})
runs = []
def measure(_):
    depths = []
    deepest(depths)
    runs.append([depths[0], depths[-1] - depths[0], depths[1] - depths[0]])
micropython.schedule(measure, 0)
for _ in range(1):  # a jump in the product's code: the callback runs here
    pass
p = machine.Pin(2, machine.Pin.OUT)
micropython.schedule(measure, 0)
p.value(1)  # runs at the simulated Pin.value's first jump
p4 = machine.Pin(4, machine.Pin.IN)
p4.irq(measure, machine.Pin.IRQ_RISING)
machine.Pin._drive(4, 1)  # the world's edge: the handler runs inside the simulator
for _ in range(1):
    pass
print(json.dumps([runs, _simstack.high()]))
""", tmp_path)
    runs, high = json.loads(r.stdout.splitlines()[-1])
    (own_start, own_span, frame), (sched_start, sched_span, _), (irq_start, irq_span, _) = runs
    assert sched_start - own_start > frame and irq_start - own_start > frame  # deeper here
    assert abs(sched_span - own_span) < frame and abs(irq_span - own_span) < frame
    assert ESP32_STACK_LIMIT - frame <= high < ESP32_STACK_LIMIT


def test_an_espnow_receive_callback_runs_on_the_vms_task_within_its_stack(fw, tmp_path):
    """modespnow.c:recv_cb (the WiFi task) only schedules ESPNow.irq's callback: it runs on
    the VM's task, so its depth is the product's, held to the task's stack. The simulated
    radio delivers from a thread of its own, as the control channel does."""
    r = run_code(fw, PRELUDE + RECURSE + f"""
import _thread, espnow, _espnow
_simstack.start({ESP32_STACK_LIMIT})
network.WLAN(network.STA_IF).active(True)
e = espnow.ESPNow()
e.active(True)
vm = _thread.get_ident()
ran = []
def on_recv(_):
    ran.append([_thread.get_ident() == vm, deepest([])])
e.irq(on_recv)
delivered = _thread.allocate_lock()
delivered.acquire()
def radio():
    _espnow._deliver(b"\\x24\\x0a\\xc4\\x00\\x00\\x01", b"hi", -50)
    delivered.release()
_thread.start_new_thread(radio, ())
delivered.acquire()
for _ in range(3):  # the VM runs a scheduled callback at its next jump
    pass
print(json.dumps([ran, e.recv(0)[1]]))
""", tmp_path)
    ran, msg = json.loads(r.stdout.splitlines()[-1])
    assert ran == [[True, "maximum recursion depth exceeded"]] and msg == "hi"
