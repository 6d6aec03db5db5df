"""Free heap while the setup portal serves, on a simulated device with an ESP32's heap
(`-X heapsize=110000`, the 32-bit host firmware). An unconfigured device (config.txt holds
only its appassword) boots into safe mode; free heap after gc.collect() (control op
`state`, the median of a few reads a device second apart) is read before the network
starts (the core alone), with the access point, DNS responder and HTTP server open and
idle after serving the page, and while both connection slots hold a request half sent
(the most the portal keeps at once). The difference is the portal's share, also as a
ratio of the ~110 KB an ESP32 has free for MicroPython. The simulator's own modules'
heap (C on an ESP32, _common.simulator_heap) is stated beside it."""

import socket
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from _common import simulator_heap  # noqa: E402
from epx import build  # noqa: E402
from epx.sim import appimage  # noqa: E402
from epx.sim.device import Device  # noqa: E402
from epx.sim.net import read_until_closed  # noqa: E402

HEAPSIZE = 110000
READS = 5
PASSWORD = "bench-portal-1"


def free(dev):
    got = []
    for _ in range(READS):
        dev.advance(1000)
        state = dev.call("state")
        got.append(state["mem_free"])
    return int(statistics.median(got)), state["modules"]


def page(addr):
    with socket.create_connection(addr, timeout=30) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return read_until_closed(s)


def measure(tmp, profile):
    exe, _ = build.build_unix(profile)
    image = appimage.build(exe.read_bytes(), build.firmware_version(profile))
    dev = Device.create(Path(tmp, profile), image, files={"config.txt": f"appassword {PASSWORD}\n"},
                        heapsize=HEAPSIZE)
    held = []
    try:
        dev.start()
        dev.wait_boot(1)
        dev.advance(5000)
        core, _ = free(dev)  # ~10 s: the network (and the portal) start at 12 s
        dev.advance(3000)
        dev.wait_console(r"ap: \S+ open")
        dev.join_ap(PASSWORD)
        addr = dev.portal_address()
        for _ in range(3):
            assert page(addr).startswith(b"HTTP/1.0 200 ")
        idle, _ = free(dev)
        for _ in range(2):
            s = socket.create_connection(addr, timeout=30)
            s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 900\r\n")
            held.append(s)
        got = []
        for _ in range(READS):  # within the 10 s a request may take
            got.append(dev.call("state")["mem_free"])
        busy = int(statistics.median(got))
        modules = dev.call("state")["modules"]
        return core, idle, busy, simulator_heap(exe, modules)[0]
    finally:
        for s in held:
            s.close()
        dev.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("bare", "h2o"):
            core, idle, busy, sim = measure(tmp, profile)
            print(f"{profile}, -X heapsize={HEAPSIZE}: free before the portal {core} bytes; portal open, "
                  f"idle {idle}; both slots busy {busy}; the portal takes {core - busy} bytes = "
                  f"{(core - busy) / 110000:.3f} of an ESP32's ~110 KB; the simulator's modules "
                  f"take {sim} bytes (C on an ESP32): at least {busy + sim} bytes free on a device")


if __name__ == "__main__":
    main()
