"""Host app images: real ESP32 app images (esptool's bin_image) carrying the host executable.

Segment 0 (DROM) is an `esp_app_desc_t`; the executable follows in a second DROM segment,
placed so esptool needs no padding segment. The descriptor's `app_elf_sha256` is the
SHA-256 of the executable and `reserv1[0]` its exact length (segments are 4-byte padded).
"""

import datetime
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile

from esptool.bin_image import ESP32FirmwareImage, ImageSegment, LoadFirmwareImage
from esptool.util import FatalError

from ..errors import EpxError

DESC_MAGIC = 0xABCD5432
DESC_FORMAT = "<II2I32s32s16s16s32s32s80s"
DESC_SIZE = struct.calcsize(DESC_FORMAT)
DROM = 0x3F400000
HEADER_SIZE = 24  # common header (8) + extended header (16)
SEGMENT_HEADER = 8
IDF_VERSION = "v5.2.2"
PROJECT = "epx"
CHIP = "esp32"
APP_SLOT = 0x1E0000

assert DESC_SIZE == 256


def descriptor(version, exe, project=PROJECT, idf_ver=IDF_VERSION, when=None, secure_version=0):
    when = when or datetime.datetime.now()
    fields = (DESC_MAGIC, secure_version, len(exe), 0, version.encode(), project.encode(),
              when.strftime("%H:%M:%S").encode(), when.strftime("%b %d %Y").encode(),
              idf_ver.encode(), hashlib.sha256(exe).digest(), b"")
    for name, value, size in (("version", version, 32), ("project_name", project, 32)):
        if len(value.encode()) >= size:
            raise EpxError(f"app descriptor: {name} {value!r} longer than {size - 1} bytes")
    return struct.pack(DESC_FORMAT, *fields)


def parse_descriptor(raw):
    (magic, secure_version, length, _, version, project, time, date, idf_ver, sha,
     _) = struct.unpack(DESC_FORMAT, raw[:DESC_SIZE])
    if magic != DESC_MAGIC:
        raise EpxError(f"app image: no app descriptor (magic {magic:#010x})")

    def text(b):
        return b.split(b"\0", 1)[0].decode(errors="replace")

    return {"magic": magic, "secure_version": secure_version, "version": text(version),
            "project_name": text(project), "time": text(time), "date": text(date),
            "idf_ver": text(idf_ver), "app_elf_sha256": sha.hex(), "length": length}


def build(exe, version, slot_size=APP_SLOT, **desc_args):
    """The app image (bytes) for executable bytes `exe`."""
    image = ESP32FirmwareImage()
    image.entrypoint = 0x40080000
    image.flash_mode = 2  # DIO, as MicroPython's ESP32 builds
    image.flash_size_freq = 0x20  # 4MB, 40 MHz
    desc = descriptor(version, exe, **desc_args)
    image.segments.append(ImageSegment(DROM + HEADER_SIZE + SEGMENT_HEADER, desc))
    # The executable's file offset and load address agree modulo the 64 KB MMU page, in
    # the next page: esptool writes it without a padding segment.
    at = HEADER_SIZE + 2 * SEGMENT_HEADER + len(desc)
    image.segments.append(ImageSegment(DROM + 0x10000 + at, exe))
    data = image.save(None)
    if len(data) > slot_size:
        raise EpxError(f"app image: {len(data)} bytes, over the {slot_size:#x} app slot")
    return data


def stripped(exe_path):
    """The executable's bytes without symbols (`strip`), to keep the image small."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "exe")
        shutil.copy2(exe_path, copy)
        if shutil.which("strip"):
            subprocess.run(["strip", copy], capture_output=True)
        with open(copy, "rb") as f:
            return f.read()


def write(exe_path, version, out, **kw):
    data = build(stripped(exe_path), version, **kw)
    with open(out, "wb") as f:
        f.write(data)
    return data


def load(data):
    """esptool's view of an image in `data` (trailing erased flash is fine), checked."""
    try:
        image = LoadFirmwareImage(CHIP, data)
    except (FatalError, RuntimeError, struct.error, ValueError) as e:
        raise EpxError(f"app image: {e}")
    if image.chip_id != image.ROM_LOADER.IMAGE_CHIP_ID:
        raise EpxError(f"app image: built for chip id {image.chip_id}, not the ESP32")
    if image.calculate_checksum() != image.checksum:
        raise EpxError("app image: checksum mismatch")
    if not image.append_digest or image.stored_digest != image.calc_digest:
        raise EpxError("app image: SHA-256 mismatch")
    return image


def read(data):
    """(descriptor dict, executable bytes) of a host app image; EpxError if it is not valid."""
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            data = f.read()
    if not data or data[0] != 0xE9:
        raise EpxError("app image: no image (magic byte is not 0xE9)")
    image = load(bytes(data))
    if len(image.segments) < 2:
        raise EpxError("app image: no executable segment")
    desc = parse_descriptor(image.segments[0].data)
    exe = b"".join(s.data for s in image.segments[1:])[:desc["length"]]
    if hashlib.sha256(exe).hexdigest() != desc["app_elf_sha256"]:
        raise EpxError("app image: executable does not match the descriptor's SHA-256")
    desc["image_size"] = image.data_length + (32 if image.append_digest else 0)
    return desc, exe
