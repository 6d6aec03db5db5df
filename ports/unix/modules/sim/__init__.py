# The simulated world inside the firmware: the device folder, the boot record, the
# control-channel link to the host and the pin levels. Host firmware only.
import json
import _simclock
import _thread
import uos

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

# The WiFi world (set by the host with wifi.set): is the AP there, its password, has the
# link been dropped, how long association takes.
wifi = {"ap": True, "password": None, "drop": False, "delay_ms": 0, "generation": 0}

_link = None  # the control socket, once connected
_send_lock = _thread.allocate_lock()


def path(name):
    return DIR + "/" + name


def attach(sock):
    global _link
    _link = sock


def send(obj):
    """One JSON line to the host; silently nothing when no host listens."""
    if _link is None:
        return
    data = json.dumps(obj).encode() + b"\n"
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
        emit("reset", cause=cause)
    _simclock.exit(code)


def read_file(name, default=None):
    try:
        with open(path(name), "rb") as f:
            return f.read()
    except OSError:
        return default


def write_file(name, data):
    # Written beside and renamed: a reset in the middle leaves the old contents.
    tmp = path(name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    uos.rename(tmp, path(name))


def mac():
    """The base MAC (efuse): from the boot record, else derived from the device folder."""
    m = BOOT.get("mac")
    if m:
        return bytes.fromhex(m.replace(":", ""))
    import hashlib

    h = hashlib.sha256(DIR.rsplit("/", 1)[-1].encode()).digest()
    return b"\x24\x0a\xc4" + h[:3]
