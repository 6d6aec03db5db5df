"""MQTT publish round-trip through a local mosquitto: uumqtt inside the host firmware
against paho-mqtt from CPython, in the same run (us per round-trip, ratio). A round-trip is
a QoS 0 publish to a topic the client subscribes to, until the message comes back. Both
clients wait the same way: one thread that sleeps in its poll of the socket until the
message is there (asyncio's poll in the firmware, paho's loop() without its thread)."""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import paho.mqtt.client as paho  # noqa: E402

from epx import build  # noqa: E402
from epx.sim.net import Broker  # noqa: E402

N = 2000
WARMUP = 100

PROBE = """
import sys;sys.path[:]=['.frozen']
import asyncio, time, network, uumqtt
w = network.WLAN(network.STA_IF); w.active(True); w.connect('epx-sim', None)
got = asyncio.Event()
def on(t, m, r, d): got.set()
async def trip(c, n):
    for i in range(n):
        got.clear()
        await c.publish('bench/rt', b'x' * 16)
        await got.wait()
async def main():
    c = uumqtt.MQTTClient('bench-fw', '127.0.0.1', %d, keepalive=60, on_message=on)
    await c.connect()
    await c.subscribe('bench/rt')
    await trip(c, %d)
    t = time.ticks_us()
    await trip(c, %d)
    print('us', time.ticks_diff(time.ticks_us(), t) / %d)
    await c.disconnect()
asyncio.run(main())
"""


def firmware_us(exe, port):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([str(exe), "-c", PROBE % (port, WARMUP, N, N)], cwd=d,
                             capture_output=True, text=True, timeout=300)
    for line in out.stdout.splitlines():
        if line.startswith("us "):
            return float(line.split()[1])
    raise SystemExit("firmware probe failed:\n" + out.stdout + out.stderr)


def paho_us(port):
    got = [0]
    subscribed = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-paho")
    c.on_message = lambda *a: got.__setitem__(0, got[0] + 1)
    c.on_subscribe = lambda *a: subscribed.append(1)
    c.connect("127.0.0.1", port, keepalive=60)
    c.subscribe("bench/rt", 0)
    while not subscribed:
        c.loop(timeout=10)

    def trip(n):
        for _ in range(n):
            want = got[0] + 1
            c.publish("bench/rt", b"x" * 16, qos=0)  # written at once (no loop thread)
            while got[0] < want:
                assert c.loop(timeout=10) == paho.MQTT_ERR_SUCCESS
    trip(WARMUP)
    t = time.perf_counter()
    trip(N)
    us = (time.perf_counter() - t) / N * 1e6
    c.disconnect()
    return us


def main():
    exe = build.build_unix("netcheck")[0]
    with Broker() as b:
        fw = firmware_us(exe, b.port)
        ref = paho_us(b.port)
    print(f"mqtt publish round-trip: firmware {fw:.0f} us, paho {ref:.0f} us, ratio {fw / ref:.2f}")


if __name__ == "__main__":
    main()
