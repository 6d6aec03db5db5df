"""A stand-in firmware in CPython that speaks the control protocol (docs/simulator.md).

It tests the host side (bootloader, resets, world, ESP-NOW medium) without building
firmware: `executable()` is a script for an app image. Besides the protocol's ops it
serves `stub.*` ops that make it do what firmware does: print, drive an output pin, send
an ESP-NOW frame, mark its app valid, exit with a code.
"""

import os
import sys

SOURCE = r'''
import base64, json, os, socket, sys, time
sys.path.insert(0, TOOLS)
from epx.sim import bootloader, provision
from epx.sim.flash import Flash

boot = json.loads(os.environ["EPX_SIM_BOOT"])
folder = os.environ["EPX_SIM_DIR"]
ticks = int(os.environ.get("EPX_SIM_TICKS_START", "0")) * 1000
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(os.environ["EPX_SIM_CTL"])
rfile = sock.makefile("rb")


def send(obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")


def out(*args):
    print(*args, flush=True)


send({"event": "hello", "boot": boot})
world = json.loads(rfile.readline())
send({"id": world["id"], "ok": True, "result": None})
flash = Flash(os.path.join(folder, "flash.bin"))
try:
    config = provision.lfs_files(flash.read("vfs")).get("config.txt", b"").decode()
except Exception as e:
    config = "unreadable: %s" % e
out("stub boot %d cause %d wake %d slot %s state %s ticks %d mac %s" % (
    boot["boot"], boot["reset_cause"], boot["wake_reason"], boot["slot"],
    boot["running_state"], ticks // 1000, boot["mac"]))
out("world pins %s" % json.dumps(world["pins"], sort_keys=True))
out("config %r" % config)
rtc = os.path.join(folder, "rtc.bin")
out("rtc %r" % (open(rtc, "rb").read() if os.path.exists(rtc) else None))
levels = {int(k): v for k, v in world["pins"].items()}


def stub_exit(m):
    if "deepsleep_ms" in m:
        with open("deepsleep.json", "w") as f:
            json.dump({"ms": m["deepsleep_ms"]}, f)
    send({"event": "reset", "cause": m.get("cause", "exit"), "t_us": ticks})
    if m.get("signal"):
        os.kill(os.getpid(), m["signal"])
    os._exit(m["code"])


def stub_pin(m):
    levels[m["pin"]] = m["value"]
    send({"event": "pin", "pin": m["pin"], "value": m["value"], "t_us": ticks})


def stub_rtc(m):
    with open(rtc, "wb") as f:
        f.write(m["data"].encode())


def advance(m):
    global ticks
    ticks += m["ms"] * 1000


OPS = {
    "clock.now": lambda m: ticks,
    "clock.advance": advance,
    "pin.set": lambda m: levels.__setitem__(int(m["pin"]), m["value"]),
    "pin.get": lambda m: levels.get(int(m["pin"]), 0),
    "espnow.deliver": lambda m: out("espnow from %s: %s" % (m["peer"], base64.b64decode(m["msg"]).decode())),
    "state": lambda m: {"t_us": ticks},
    "stub.print": lambda m: out(m["text"]),
    "stub.exit": stub_exit,
    "stub.pin": stub_pin,
    "stub.rtc": stub_rtc,
    "stub.espnow": lambda m: send({"event": "espnow.send", "peer": m["peer"], "channel": m.get("channel", 1),
                                   "msg": base64.b64encode(m["text"].encode()).decode()}),
    "stub.mark_valid": lambda m: bootloader.mark_valid(flash, boot["slot"]) and None,
}

for line in rfile:
    m = json.loads(line)
    op = OPS.get(m.get("op"))
    try:
        if op is None:
            raise ValueError("unknown op %r" % m.get("op"))
        send({"id": m["id"], "ok": True, "result": op(m)})
    except Exception as e:
        send({"id": m["id"], "ok": False, "error": "%s: %s" % (type(e).__name__, e)})
os._exit(0)
'''


def executable(python=None):
    """The stub as an executable script for this machine's Python (bytes)."""
    tools = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return f"#!{python or sys.executable}\nTOOLS = {tools!r}\n{SOURCE}".encode()
