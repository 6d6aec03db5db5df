"""`epx flash`: a build's (or a release's) firmware and the provisioned littlefs in one
esptool call. No ESP32 here: the test flashes into the merged image of the whole flash
(`--out`, esptool merge-bin) and reads it back with independent tools: the partition table
as ESP-IDF's gen_esp32part.py lays it out (parsed here with struct), the app descriptor
with `esptool image-info`, the filesystem with littlefs-python. The dist/ folder is a
stand-in made as the ESP-IDF build lays it out (bootloader at 0x1000, table at 0x8000, the
app at ota_0), with a real ESP32 app image (tests/esptoolkit.py)."""

import csv
import hashlib
import os
import struct
import subprocess
import sys

import pytest
from littlefs import LittleFS

from esptoolkit import dist_folder, image_info
from epx import partitions
from epx.paths import BOARDS
from epx.sim import appimage
from epx.sim.flash import table_binary

VERSION = "h2o-1.4"
CONFIG = ("ssid home\npassword long-enough-pass\nmqttbroker 192.168.1.2\nmqttname tank\n"
          "unit L\ncapacity 1000\nlevelsensors 20,40,60,80,100\nflowpulserate 4.8\n")
FLASH_SIZE = 4 * 1024 * 1024


def csv_table(board):
    """(name, type, subtype, offset, size) of each row of boards/<board>/partitions.csv,
    read with the csv module (offsets left out are placed as gen_esp32part.py does)."""
    rows, at = [], 0x9000
    with open(BOARDS / board / "partitions.csv", newline="") as f:
        for row in csv.reader(line for line in f if line.strip() and not line.startswith("#")):
            name, kind, sub, offset, size = [c.strip() for c in row[:5]]
            size = int(size[:-1]) * 1024 if size.endswith("K") else (
                int(size[:-1]) * 1024 * 1024 if size.endswith("M") else int(size, 0))
            offset = int(offset, 0) if offset else (at + 0xFFFF & ~0xFFFF if kind == "app" else at)
            rows.append((name, kind, sub, offset, size))
            at = offset + size
    return rows


def read_table(raw):
    """The partition table at 0x8000 as ESP-IDF lays it out: 32-byte entries (magic 0x50AA,
    type, subtype, offset, size, name), then the MD5 entry over them."""
    parts = []
    for at in range(0, 0xC00, 32):
        magic, kind, sub, offset, size, name, _ = struct.unpack("<HBBII16sI", raw[at:at + 32])
        if magic == 0xEBEB:
            assert raw[at + 16:at + 32] == hashlib.md5(raw[:at]).digest()
            return parts
        assert magic == 0x50AA
        parts.append((name.rstrip(b"\0").decode(), kind, sub, offset, size))
    raise AssertionError("no MD5 entry")


def epx(*args):
    return subprocess.run([sys.executable, "-m", "epx", *args], capture_output=True, text=True,
                          timeout=300)


def test_firmware_and_filesystem_in_one_image(tmp_path):
    folder, boot, app = dist_folder(tmp_path / "dist" / "h2o-EPX_ESP32")
    config = tmp_path / "my-config.txt"
    config.write_text(CONFIG)
    merged = tmp_path / "merged.bin"
    done = epx("flash", str(folder), "--config", str(config), "--out", str(merged))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    password = [l for l in done.stdout.splitlines() if l.startswith("access point password")]
    assert len(password) == 1
    image = merged.read_bytes()
    assert len(image) == FLASH_SIZE
    assert image[0x1000:0x1000 + len(boot)] == boot

    table = read_table(image[0x8000:0x8C00])
    rows = csv_table("EPX_ESP32")
    assert [(p[0], p[3], p[4]) for p in table] == [(r[0], r[3], r[4]) for r in rows]
    where = {p[0]: (p[3], p[4]) for p in table}

    ota0, _ = where["ota_0"]
    (tmp_path / "app.bin").write_bytes(image[ota0:ota0 + len(app)])
    info = image_info(tmp_path / "app.bin")
    assert info["App version"] == VERSION and info["Validation hash"].endswith("(valid)")

    otadata = image[slice(where["otadata"][0], sum(where["otadata"]))]
    assert otadata == b"\xff" * len(otadata)  # erased: the bootloader starts ota_0

    offset, size = where["vfs"]
    fs = LittleFS(block_size=4096, block_count=size // 4096, mount=False, read_size=32,
                  prog_size=32, lookahead_size=32)
    fs.context.buffer[:] = bytearray(image[offset:offset + size])
    fs.mount()
    assert fs.listdir("/") == ["config.txt"]
    with fs.open("config.txt", "r") as f:
        text = f.read()
    assert text == CONFIG + "appassword " + password[0].split(": ")[1] + "\n"


@pytest.mark.parametrize("case, args, error", [
    ("wrong profile", ["--profile", "relay"], r"built for h2o on EPX_ESP32, not relay on EPX_ESP32; nothing written"),
    ("wrong board", ["--board", "EPX_WT32_ETH01"], r"built for h2o on EPX_ESP32, not h2o on EPX_WT32_ETH01"),
    ("another board's table", [], r"its partition table is not EPX_ESP32's; nothing written"),
    ("app of another version", [], r"its app is h2o-9.9, firmware.json says h2o-1.4; nothing written"),
])
def test_a_mismatch_is_refused_before_anything_is_written(tmp_path, case, args, error):
    import re

    if case == "another board's table":  # a table with a larger vfs than the board's
        table = partitions.load(BOARDS / "EPX_ESP32" / "partitions.csv")
        folder, _, _ = dist_folder(tmp_path / "d")
        fw = bytearray((folder / "firmware.bin").read_bytes())
        fw[0x7000:0x7000 + 0xC00] = table_binary(table[:-1] + [table[-1]._replace(size=table[-1].size * 2)])
        (folder / "firmware.bin").write_bytes(bytes(fw))
    elif case == "app of another version":
        folder, _, _ = dist_folder(tmp_path / "d")
        other = appimage.build(b"h2o EPX_ESP32 app", "h2o-9.9")
        fw = bytearray((folder / "firmware.bin").read_bytes())
        at = partitions.find(partitions.load(BOARDS / "EPX_ESP32" / "partitions.csv"), "ota_0").offset - 0x1000
        (folder / "firmware.bin").write_bytes(bytes(fw[:at]) + other)
    else:
        folder, _, _ = dist_folder(tmp_path / "d")
    merged = tmp_path / "merged.bin"
    done = epx("flash", str(folder), "--out", str(merged), *args)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert re.search(error, done.stderr), done.stderr
    assert not merged.exists() and "Traceback" not in done.stderr


def test_a_release_download_flashes_as_a_build_does(tmp_path):
    """The release assets <profile>-<board>-firmware.bin and -firmware.json, named by the .bin."""
    folder, _, _ = dist_folder(tmp_path / "d", profile="relay", version="relay-2.0")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for name in ("firmware.bin", "firmware.json"):
        os.rename(folder / name, downloads / f"relay-EPX_ESP32-{name}")
    merged = tmp_path / "merged.bin"
    done = epx("flash", str(downloads / "relay-EPX_ESP32-firmware.bin"), "--profile", "relay",
               "--out", str(merged))
    assert done.returncode == 0, done.stderr
    assert "relay-EPX_ESP32-firmware.bin: relay-2.0 for EPX_ESP32" in done.stdout
    assert merged.stat().st_size == FLASH_SIZE


def test_without_a_device_the_esptool_error_is_one_line(tmp_path):
    folder, _, _ = dist_folder(tmp_path / "d")
    done = epx("flash", str(folder), "--port", str(tmp_path / "ttyUSB9"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("epx: esptool write-flash: ") and done.stderr.count("\n") == 1, done.stderr
    assert f"esptool --chip esp32 --port {tmp_path / 'ttyUSB9'} write-flash 0x1000 " in done.stdout
