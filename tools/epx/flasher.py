"""`epx flash`: a build (dist/<profile>-<board>/) or a downloaded release
(<profile>-<board>-firmware.bin and -firmware.json) and the provisioned filesystem onto a
connected ESP32 in one esptool call, or into one merged image (--out).

Before anything is written, the firmware is checked against what it says it is and what
the user asked for: firmware.json's profile and board (and --profile/--board), the board's
partition table inside firmware.bin, the app descriptor's version (esptool's image
format, read with epx.sim.appimage). firmware.bin goes at 0x1000 with the erased otadata
it spans (the bootloader then starts ota_0, the new app, whatever slot ran before), the
littlefs image with config.txt at the vfs partition."""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import partitions
from .errors import EpxError
from .paths import BOARDS, rel

FIRMWARE_OFFSET = 0x1000  # firmware.bin starts with the bootloader
FLASH_SIZE = "4MB"


class Firmware:
    """firmware.bin and its firmware.json, checked to belong together."""

    def __init__(self, source):
        path = Path(source)
        if path.is_dir():
            found = sorted(path.glob("*firmware.json"))
            if len(found) != 1:
                raise EpxError(f"{source}: expected one firmware.json (a dist/<profile>-<board>/ "
                               f"folder or a release's <profile>-<board>-firmware.json), found {len(found)}")
            path = found[0]
        if path.name.endswith("firmware.bin"):
            path = path.with_name(path.name[:-len(".bin")] + ".json")
        if not path.name.endswith("firmware.json"):
            raise EpxError(f"{source}: not a firmware.json, firmware.bin or a folder of them")
        self.json_path = path
        self.bin_path = path.with_name(path.name[:-len(".json")] + ".bin")
        try:
            self.info = json.loads(path.read_text())
            self.data = self.bin_path.read_bytes()
        except OSError as e:
            raise EpxError(f"{rel(e.filename)}: {e.strerror}")
        except ValueError as e:
            raise EpxError(f"{rel(path)}: not JSON ({e})")
        for key in ("profile", "board", "version", "sha256"):
            if key not in self.info:
                raise EpxError(f"{rel(path)}: no {key!r}")
        self.profile, self.board, self.version = (self.info[k] for k in ("profile", "board", "version"))

    def check(self, profile=None, board=None):
        """EpxError unless the image is what firmware.json says and what the user asked for."""
        name = rel(self.bin_path)
        if profile and profile != self.profile or board and board != self.board:
            raise EpxError(f"{name}: built for {self.profile} on {self.board}, not "
                           f"{profile or self.profile} on {board or self.board}; nothing written")
        if not (BOARDS / self.board / "partitions.csv").exists():
            raise EpxError(f"{name}: board {self.board} is not one of this checkout's")
        self.table = partitions.load(BOARDS / self.board / "partitions.csv")
        from .sim.flash import TABLE_MAX, table_binary

        at = partitions.TABLE_OFFSET - FIRMWARE_OFFSET
        if self.data[at:at + TABLE_MAX] != table_binary(self.table):
            raise EpxError(f"{name}: its partition table is not {self.board}'s; nothing written")
        otadata = partitions.find(self.table, "otadata")
        at = otadata.offset - FIRMWARE_OFFSET
        if self.data[at:at + otadata.size] != b"\xff" * otadata.size:
            # written over whatever ran before: the bootloader must then start ota_0
            raise EpxError(f"{name}: its otadata is not erased; nothing written")
        app_at = partitions.find(self.table, "ota_0").offset - FIRMWARE_OFFSET
        app = self.data[app_at:]
        from .sim import appimage

        try:
            desc, _ = appimage.read(app)
        except EpxError as e:
            raise EpxError(f"{name}: at ota_0, {e}; nothing written")
        if desc["version"] != self.version or not self.version.startswith(self.profile + "-"):
            raise EpxError(f"{name}: its app is {desc['version']}, firmware.json says "
                           f"{self.version}; nothing written")
        if hashlib.sha256(app[:self.info.get("size", len(app))]).hexdigest() != self.info["sha256"]:
            raise EpxError(f"{name}: its app does not match firmware.json's sha256; nothing written")
        return self


def flash_args(firmware, files, tmp):
    """esptool's offset/file pairs: firmware.bin (its erased otadata included), the
    littlefs image."""
    from .sim import provision

    vfs = partitions.find(firmware.table, "vfs")
    fs = os.path.join(tmp, "vfs.bin")
    with open(fs, "wb") as f:
        f.write(provision.lfs_image(files, vfs.size))
    return [hex(FIRMWARE_OFFSET), str(firmware.bin_path), hex(vfs.offset), fs]


def esptool_error(output):
    """esptool's complaint in one line: its error box (click's usage errors) or its last
    line (`A fatal error occurred: ...`)."""
    lines = output.strip().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("╭─ Error"):
            box = []
            for inner in lines[i + 1:]:
                if inner.lstrip().startswith("╰"):
                    break
                box.append(inner.strip().strip("│").strip())
            return " ".join(box)
    fatal = [l for l in lines if "fatal error occurred" in l]
    last = (fatal or lines or ["failed"])[-1]
    return last.split("A fatal error occurred: ", 1)[-1]


def esptool(argv, what):
    """Run esptool with its output shown as it comes; EpxError with its complaint."""
    proc = subprocess.Popen([sys.executable, "-m", "esptool", *argv], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    for line in proc.stdout:
        output.append(line)
        if not line.lstrip().startswith(("╭", "│", "╰")):
            print(line, end="", flush=True)
    if proc.wait():
        raise EpxError(f"{what}: {esptool_error(''.join(output))}")


def flash(firmware, files, port=None, out=None, baud=None, say=print):
    """Write a checked Firmware and the filesystem to the ESP32 on `port` (esptool finds it
    if None), or with `out` into one merged image of the whole flash. The esptool command."""
    say(f"{rel(firmware.bin_path)}: {firmware.version} for {firmware.board}")
    with tempfile.TemporaryDirectory(prefix="epx-flash") as tmp:
        pairs = flash_args(firmware, files, tmp)
        if out:
            argv = ["--chip", "esp32", "merge-bin", "-o", str(out), "--pad-to-size", FLASH_SIZE, *pairs]
            esptool(argv, "esptool merge-bin")
            say(f"{out}: the whole flash ({FLASH_SIZE}); write it with: esptool --chip esp32 "
                f"write-flash 0x0 {out}")
            return argv
        argv = ["--chip", "esp32"] + (["--port", port] if port else []) + (
            ["--baud", str(baud)] if baud else []) + ["write-flash", *pairs]
        say("esptool " + " ".join(argv) + ("" if port else "   (esptool looks for the serial port)"))
        esptool(argv, "esptool write-flash")
        return argv
