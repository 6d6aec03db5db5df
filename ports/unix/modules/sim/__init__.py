# The simulated world inside the firmware: the device folder, the boot record, the
# control-channel link to the host and the pin levels. Host firmware only.
import json
import micropython
import _simclock
import _thread
import uos
import vfs

EXIT_REPL = const(3)
EXIT_RESET = const(10)
EXIT_WDT = const(11)
EXIT_DEEPSLEEP = const(12)
EXIT_PANIC = const(13)
EXIT_SOFT = const(14)

DIR = uos.getenv("EPX_SIM_DIR") or "."
BOOT = json.loads(uos.getenv("EPX_SIM_BOOT") or "{}")
for _k, _v in (("reset_cause", 1), ("wake_reason", 0), ("slot", "ota_0"),
               ("running_state", "valid"), ("boot", 0)):
    BOOT.setdefault(_k, _v)

# The radio world (set by the host with wifi.set, sim.ctl.wifi_set): the access points
# (ssid, password (None: open), channel, country (IE or None), up; epoch counts their restarts), how long a
# successful association takes (delay_ms) and a failed attempt (scan_ms: a scan of every
# channel, or a handshake that times out), the Ethernet cable, and drops (generation).
wifi = {"aps": [{"ssid": "epx-sim", "password": None, "channel": 6, "up": True, "rssi": -55,
                 "country": None, "epoch": 0, "bssid": b"\x02\x00\x00\x00\x00\x01"}],
        "delay_ms": 0, "scan_ms": 2000, "cable": True, "generation": 0}
scale = 1.0  # device seconds per real second (clock.scale)

# The device folder on the host, reached past the VFS (the littlefs is mounted at "/").
_host = vfs.VfsPosix()

_link = None  # the control socket, once connected
_send_lock = _thread.allocate_lock()


def path(name):
    return DIR + "/" + name


def open_file(name, mode="rb"):
    return _host.open(path(name), mode)


def attach(sock):
    global _link
    _link = sock


def send(obj):
    """One JSON line to the host; silently nothing when no host listens."""
    if _link is not None:
        send_raw(json.dumps(obj).encode() + b"\n")


def send_raw(data):
    if _link is None:
        return
    with _send_lock:
        try:
            _link.write(data)
        except OSError:
            pass


def emit(event, **fields):
    fields["event"] = event
    send(fields)


def exit(code, cause=None):
    """End the process now, from any thread: the chip resets."""
    if cause is not None:
        emit("reset", cause=cause, t_us=_simclock.now_us())
    _simclock.exit(code)


_trace = uos.getenv("EPX_SIM_TRACE")  # a file: what the device sent, when (device time)


def trace(what, data):
    """One line in the run's trace: device us, what, length, CRC-32 of the bytes."""
    if _trace:
        import binascii

        with _host.open(_trace, "a") as f:
            f.write("%d %s %d %08x\n" % (_simclock.now_us(), what, len(data), binascii.crc32(data)))


def read_file(name, default=None):
    try:
        with _host.open(path(name), "rb") as f:
            return f.read()
    except OSError:
        return default


def write_file(name, data):
    # Written beside and renamed: a reset in the middle leaves the old contents.
    with _host.open(path(name) + ".tmp", "wb") as f:
        f.write(data)
    _host.rename(path(name) + ".tmp", path(name))


def mac():
    """The base MAC (efuse): from the boot record, else derived from the device folder."""
    m = BOOT.get("mac")
    if m:
        return bytes.fromhex(m.replace(":", ""))
    import hashlib

    h = hashlib.sha256(DIR.rsplit("/", 1)[-1].encode()).digest()
    return b"\x24\x0a\xc4" + h[:3]


def get_int(obj):
    """py/obj.c:mp_obj_get_int on a 32-bit port: an int (or bool) that fits a machine word."""
    if not isinstance(obj, int):
        raise TypeError("can't convert %s to int" % type(obj).__name__)
    if not -0x80000000 <= obj <= 0x7FFFFFFF:
        raise OverflowError("overflow converting long int to machine word")
    return int(obj)


# The C stack the firmware has used at each entry from its code into a simulated module
# (micropython.stack_use(), from the top the VM started at): the ESP32 runs MicroPython in
# a 16 KB task (ports/esp32/mpconfigport.h MICROPY_TASK_STACK_SIZE) and stops recursion
# 1 KB short of it (MICROPY_STACK_CHECK_MARGIN); the host allows far more (simstack.c).
stack_high = 0
stack_base = 0  # where main.py starts (the port starts it from C, with little below)
# What _simstack enforces on the product's own depth (simstack.c): the task's 16 KB less
# the margin; a world may set another.
STACK_LIMIT = const(16 * 1024 - 1024)
stack_limit = STACK_LIMIT


def stack_mark():
    global stack_high
    n = micropython.stack_use()
    if n > stack_high:
        stack_high = n
