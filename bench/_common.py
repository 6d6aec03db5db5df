"""What the benches share: a module's plain-bytecode twin, a probe run inside a host
firmware that prints its figures as `name value` lines, the heap the simulator's own
Python modules take (C on an ESP32), to take off a device's heap figures, and a running
device's CPU time and its wait to be online."""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from epx import build
from epx.sim import appimage


def bytecode_twin(path, viper_functions):
    """The module at `path` without its viper decorators (annotations are not evaluated);
    ptr32() becomes the identity."""
    twin, n = re.subn(r"^\s*@micropython\.viper\n", "", Path(path).read_text(), flags=re.M)
    assert n == viper_functions, f"expected {viper_functions} viper functions in {path}"
    return "def ptr32(x):\n    return x\n\n\n" + twin


def image(profile):
    """The host app image of a profile's host firmware (built if out of date)."""
    exe, _ = build.build_unix(profile)
    return appimage.build(exe.read_bytes(), build.firmware_version(profile))


def run_probe(exe, probe, modules):
    """Run `probe` in the firmware `exe` (frozen modules first, then `modules`: {name:
    source}) in a scratch folder; {name: value text} from its output, or exit with it."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in modules.items():
            Path(tmp, name + ".py").write_text(source)
        Path(tmp, "probe.py").write_text(probe)
        out = subprocess.run([str(exe), "-c", "import sys;sys.path[:]=['.frozen',''];import probe"],
                             cwd=tmp, capture_output=True, text=True, timeout=300)
    if out.returncode:
        sys.exit(out.stdout + out.stderr)
    return dict(line.split() for line in out.stdout.split("\n") if line)


# --- the simulator's share of a device's heap -----------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SIM_MODULES = ROOT / "ports" / "unix" / "modules"
# Importing the entry point starts the simulated device: not measurable on its own.
SIM_ENTRY = "_sim_start"

SIM_IMPORTS = r"""
import gc
gc.collect()
before = gc.mem_alloc()
for name in NAMES:
    __import__(name)
gc.collect()
print("sim", gc.mem_alloc() - before)
"""


def simulator_modules():
    """The simulator's own modules (ports/unix/modules): Python in the host firmware, C (or
    not there at all: chip models) on an ESP32."""
    names = set()
    for path in SIM_MODULES.rglob("*.py"):
        parts = path.relative_to(SIM_MODULES).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def simulator_heap(exe, loaded):
    """(bytes, names): the heap the simulator's modules among `loaded` (a device's
    sys.modules) take once imported, measured in a fresh run of the same firmware. Their
    import only (module dicts, classes, functions), not the objects they make at run time:
    a lower bound of the simulator's share."""
    names = sorted(n for n in simulator_modules() & set(loaded) if n != SIM_ENTRY)
    probe = f"NAMES = {names!r}\n" + SIM_IMPORTS
    return int(run_probe(exe, probe, {})["sim"]), names


def heap_reads(dev, profile, field, reads=5):
    """(the median of `reads` reads of a running device's heap `field` (mem_alloc or
    mem_free, after gc.collect()) a device second apart, the simulator's share of its heap)."""
    values = []
    for _ in range(reads):
        dev.advance(1000)
        state = dev.call("state")
        values.append(state[field])
    exe, _ = build.build_unix(profile)
    return int(statistics.median(values)), simulator_heap(exe, state["modules"])[0]


# --- running devices -----------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """CPU time (user + system) of process `pid` so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def online(broker, names, timeout):
    """Until every device's stat/<n>/LWT says Online."""
    import paho.mqtt.client as mqtt

    seen, done = set(), threading.Event()

    def on_message(client, userdata, msg):
        name = msg.topic.split("/")[1]
        if msg.payload == b"Online" and name in names:
            seen.add(name)
            if seen >= names:
                done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-online-{os.getpid()}")
    c.on_connect = lambda client, *a: client.subscribe("stat/+/LWT", 1)
    c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        if not done.wait(timeout):
            sys.exit(f"not online within {timeout} s: {sorted(names - seen)[:10]}")
    finally:
        c.loop_stop()
        c.disconnect()
