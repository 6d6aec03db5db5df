"""The simulated ESP32's RAM (ports/unix/variant/simram.c) against the pinned port: the GC
heap starts at MICROPY_GC_INITIAL_HEAP_SIZE and grows into the RAM IDF's heap hands out
(py/gc.c gc_try_add_heap, ports/esp32/gccollect.c gc_get_max_new_split), which mbedTLS
(sdkconfig.base: CONFIG_MBEDTLS_DEFAULT_MEM_ALLOC), WiFi and lwIP take from too; a TLS
handshake that finds no room fails as extmod/modtls_mbedtls.c raises it."""

import json

import pytest

from epx import build
from epx.sim import net
from epx.sim.device import ESP32_GC_INITIAL_HEAP
from fwcode import run_code

ENOMEM = 12
# extmod/mbedtls/mbedtls_config_common.h: the record buffers mbedtls_ssl_setup allocates
IN_CONTENT_LEN, OUT_CONTENT_LEN = 16384, 4096

CODE = """
import json, esp32, gc, network, socket, tls, _simclock, _simram
_simclock.scale(1e-6)
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("epx-sim")
_simclock.advance(100)
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = tls.CERT_NONE
def ram():
    regions = esp32.idf_heap_info(esp32.HEAP_DATA)
    return [sum(r[1] for r in regions), max(r[2] for r in regions), _simram.use()[2]]
def connect():
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", PORT)[0][-1])
    try:
        t = ctx.wrap_socket(s, server_hostname="localhost")
    except OSError as e:
        s.close()
        return e.args[0]
    up = ram()  # while the connection is up
    t.close()
    return up
seen = {"boot": ram()}
seen["tls up"] = connect()
seen["tls closed"] = ram()
hog = []
try:
    while True:
        hog.append(bytearray(4000))
except MemoryError:
    pass
del hog[-8:]  # room for Python again, while the grown heap keeps the RAM
seen["heap grown"] = ram() + [gc.mem_free()]
seen["handshake, heap grown"] = connect()
hog = None
gc.collect()  # the added areas empty: given back (gc_sweep_free_blocks)
seen["heap shrunk"] = ram()
seen["handshake, heap shrunk"] = connect()
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def fw():
    return build.build_unix("coreunit")[0]


def test_tls_takes_its_ram_from_the_ram_the_gc_heap_grows_into(fw, tmp_path, test_ca):
    (tmp_path / "run").mkdir()
    env = {"EPX_SIM_RAM": str(ESP32_GC_INITIAL_HEAP), "PATH": "/usr/bin:/bin"}
    with net.Broker(tls=test_ca) as broker:
        r = run_code(fw, f"PORT = {broker.port}\n" + CODE, tmp_path,
                     heap=ESP32_GC_INITIAL_HEAP, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    free, largest, tls = seen["boot"]
    # a connection holds mbedTLS's record buffers (and its session) in the IDF heap
    assert seen["tls up"][2] >= IN_CONTENT_LEN + OUT_CONTENT_LEN
    assert seen["tls up"][0] <= free - IN_CONTENT_LEN - OUT_CONTENT_LEN
    assert seen["tls closed"] == seen["boot"]  # closing gives it all back
    # the GC heap grew into the RAM until no block fits the input buffer: ENOMEM, as the
    # port maps MBEDTLS_ERR_SSL_ALLOC_FAILED; gc.mem_free() counts the largest block in
    grown_free, grown_largest, _, mem_free = seen["heap grown"]
    assert grown_largest < IN_CONTENT_LEN <= largest
    assert mem_free >= grown_largest
    assert seen["handshake, heap grown"] == ENOMEM
    assert seen["heap shrunk"] == seen["boot"]
    assert seen["handshake, heap shrunk"][2] >= IN_CONTENT_LEN + OUT_CONTENT_LEN


def test_the_ram_is_the_hosts_unless_modelled(fw, tmp_path, test_ca):
    """Without EPX_SIM_RAM the heap is the -X heapsize block alone and nothing is refused
    (the suite's default): the same hog leaves the handshake working."""
    (tmp_path / "run").mkdir()
    with net.Broker(tls=test_ca) as broker:
        code = f"PORT = {broker.port}\n" + CODE.replace("regions = esp32.idf_heap_info(esp32.HEAP_DATA)", "regions = [(0, 0, 0, 0)]")
        r = run_code(fw, code, tmp_path, heap=ESP32_GC_INITIAL_HEAP, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["handshake, heap grown"][2] >= IN_CONTENT_LEN + OUT_CONTENT_LEN


def test_the_gc_adds_the_area_the_chips_heap_would(fw, tmp_path):
    """With room for the simulator's modules on top of the port's 56 KB, the GC's first new
    area still doubles the chip's heap (py/gc.c gc_try_add_heap: about the whole heap so
    far), not the simulator's larger one, and comes out of the RAM in full."""
    (tmp_path / "run").mkdir()
    room = 28 * 1024
    code = """
import json, gc, _simram
first = _simram.use()[0]
hog = []
while _simram.use()[0] == first:
    hog.append(bytearray(1000))
largest = max(r[2] for r in _simram.info())
print(json.dumps([first, _simram.use()[0], gc.mem_alloc() + gc.mem_free() - largest]))
"""
    r = run_code(fw, code, tmp_path, heap=ESP32_GC_INITIAL_HEAP + room,
                 env={"EPX_SIM_RAM": str(ESP32_GC_INITIAL_HEAP), "PATH": "/usr/bin:/bin"})
    first, grown, gc_total = json.loads(r.stdout.strip().splitlines()[-1])
    assert ESP32_GC_INITIAL_HEAP <= first < ESP32_GC_INITIAL_HEAP + 64  # its block header
    added = grown - first
    assert ESP32_GC_INITIAL_HEAP <= added <= ESP32_GC_INITIAL_HEAP * 1.05
    # the GC's own count of its heap: the room and the chip's two areas (less their tables)
    assert ESP32_GC_INITIAL_HEAP + room + added - 8 * 1024 <= gc_total <= ESP32_GC_INITIAL_HEAP + room + added


def test_threads_wifi_and_sockets_take_their_ram(fw, tmp_path):
    """A thread holds its task's stack (mpthreadport.c: MP_THREAD_DEFAULT_STACK_SIZE, 4096
    + MICROPY_STACK_CHECK_MARGIN 1024) and TCB until its function returns; WiFi's buffers
    and task stack are held from the radio's start; each socket holds lwIP's structures
    until closed. Each allocation costs its size rounded to 4 plus a 4-byte header."""
    (tmp_path / "run").mkdir()
    code = """
import json, _thread, time, network, socket, _simram
def c():
    return _simram.use()[4]
seen = [c()]
network.WLAN(network.STA_IF).active(True)
seen.append(c())
running = True
def work():
    while running:
        time.sleep_ms(1)
_thread.start_new_thread(work, ())
seen.append(c())
running = False
for _ in range(1000):
    if c() == seen[1]:
        break
    time.sleep_ms(1)
seen.append(c())
tcp, udp = socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seen.append(c())
tcp.close()
udp.close()
seen.append(c())
print(json.dumps(seen))
"""
    r = run_code(fw, code, tmp_path, heap=ESP32_GC_INITIAL_HEAP,
                 env={"EPX_SIM_RAM": str(ESP32_GC_INITIAL_HEAP), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    boot, wifi, thread, ended, sockets, closed = json.loads(r.stdout.strip().splitlines()[-1])
    assert wifi - boot == 10 * (1600 + 4) + 6656 + 4
    assert thread - wifi == 4096 + 1024 + 352 + 4
    assert ended == wifi
    assert sockets - wifi == 400 + 4 + 200 + 4
    assert closed == wifi
