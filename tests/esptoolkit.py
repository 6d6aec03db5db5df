"""esptool's own reading of images, for tests that check what epx wrote, and a stand-in
dist/<profile>-<board>/ folder for tests of what reads one (no ESP-IDF here)."""

import hashlib
import json
import subprocess
import sys

from epx import partitions
from epx.paths import BOARDS
from epx.sim import appimage
from epx.sim.flash import table_binary


def image_info(path):
    """esptool's own reading of an app image: {field: value} of its report."""
    done = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)


def dist_folder(folder, profile="h2o", board="EPX_ESP32", version="h2o-1.4"):
    """A stand-in dist/<profile>-<board>/: firmware.bin (a bootloader image at 0x1000, the
    board's table at 0x8000, the app at ota_0), micropython.bin and firmware.json."""
    table = partitions.load(BOARDS / board / "partitions.csv")
    app = appimage.build(f"{profile} {board} app".encode(), version)
    boot = appimage.build(b"second stage bootloader", "bootloader")
    first_app = partitions.find(table, "ota_0").offset
    image = bytearray(b"\xff" * (first_app - 0x1000))
    image[:len(boot)] = boot
    image[0x7000:0x7000 + 0xC00] = table_binary(table)
    folder.mkdir(parents=True)
    (folder / "firmware.bin").write_bytes(bytes(image) + app)
    (folder / "micropython.bin").write_bytes(app)
    (folder / "firmware.json").write_text(json.dumps({
        "profile": profile, "board": board, "version": version,
        "sha256": hashlib.sha256(app).hexdigest(), "size": len(app)}))
    return folder, boot, app
