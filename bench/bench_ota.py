"""OTA: image bytes per second into the OTA partition (epx.otawrite: HTTP, image check with
its one SHA-256, erase and write) as a ratio to a plain loopback HTTP transfer of the same
file with the same client in the same run (goal >= 0.5), in the host firmware on a simulated
flash. Best of 7 of each, taken in turns."""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from epx import build, ota  # noqa: E402
from epx.sim import appimage, bootloader  # noqa: E402
from epx.sim.flash import Flash  # noqa: E402

ROUNDS = 7

PROBE = r"""
import asyncio, binascii, esp32, network, time
from epx import http, otawrite

wlan = network.WLAN(network.STA_IF)
wlan.active(True)
wlan.connect('epx-sim', None)  # the simulated world's access point
while not wlan.isconnected():
    pass
URL, SIZE, SHA, ROUNDS = %r, %d, binascii.unhexlify(%r), %d
target = esp32.Partition(esp32.Partition.RUNNING).get_next_update()
buf = bytearray(4096)


async def plain():
    r = await http.get(URL)
    while await r.readinto(buf):
        pass
    await r.close()


async def into_partition():
    await otawrite.write(target, URL, SIZE, SHA, lambda *desc: None, buf=buf)


def spent(job):
    t = time.ticks_us()
    asyncio.run(job())
    return time.ticks_diff(time.ticks_us(), t)


# Alternating, so a busy spell on the shared machine slows both alike.
runs = [(spent(plain), spent(into_partition)) for _ in range(ROUNDS)]
print("RESULT", SIZE, min(r[0] for r in runs), min(r[1] for r in runs))
"""


def main():
    exe = build.build_unix("ota_unit")[0]
    image = appimage.build(appimage.stripped(exe), "ota_unit-bench")
    server = ota.ImageServer(image, host="127.0.0.1")
    try:
        with tempfile.TemporaryDirectory() as dev:
            flash = Flash.create(Path(dev) / "flash.bin")
            flash.write("ota_0", image)
            bootloader.boot(flash)
            code = PROBE % (server.url("127.0.0.1"), len(image), ota.load_image(image).sha256, ROUNDS)
            out = subprocess.run([str(exe), "-c", "import sys;sys.path[:]=['.frozen']\n" + code],
                                 cwd=dev, env={"EPX_SIM_DIR": dev}, capture_output=True,
                                 text=True, timeout=300)
    finally:
        server.close()
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT")]
    if not line:
        print(out.stdout + out.stderr, file=sys.stderr)
        return 1
    size, http_us, ota_us = map(int, line[0].split()[1:])
    http_rate, ota_rate = size / http_us * 1e6, size / ota_us * 1e6
    print(f"ota_write: {ota_rate / 1024:.0f} KB/s into the partition, plain HTTP "
          f"{http_rate / 1024:.0f} KB/s, ratio {ota_rate / http_rate:.2f} (goal >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
