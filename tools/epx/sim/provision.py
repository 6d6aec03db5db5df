"""Provisioning: the littlefs image with config.txt, NVS from a CSV, merged flash images.

The same images go to real devices (esptool) and simulated ones (into flash.bin).
"""

import base64
import csv
import json
import os
import subprocess
import sys
import tempfile

from littlefs import LittleFS, errors as lfs_errors

from ..errors import EpxError
from .. import partitions
from .flash import Flash, table_binary

# The ESP32 port's VfsLfs2 on esp32.Partition: 4 KB blocks, readsize/progsize/lookahead
# 32 (vfs_lfs.c defaults), cache min(block, 4 * max(read, prog)), block_cycles 100.
LFS_GEOMETRY = dict(block_size=4096, read_size=32, prog_size=32, lookahead_size=32,
                    cache_size=128, block_cycles=100, name_max=255,
                    disk_version=0x00020001)  # the littlefs v2.8 that MicroPython 1.25 carries
BOOTLOADER_OFFSET = 0x1000


def lfs(size, image=None):
    """A LittleFS over `image` (bytes; formatted if None) with the ESP32 port's geometry."""
    bs = LFS_GEOMETRY["block_size"]
    if size % bs:
        raise EpxError(f"vfs: size {size:#x} is not a multiple of {bs}")
    fs = LittleFS(block_count=size // bs, mount=False, **LFS_GEOMETRY)
    if image is None:
        fs.format()
    else:
        fs.context.buffer[:] = bytearray(image[:size])
    try:
        fs.mount()
    except lfs_errors.LittleFSError as e:
        raise EpxError(f"vfs: not a littlefs image ({e})")
    return fs


def lfs_image(files, size):
    """A littlefs image of `size` bytes holding `files` ({path: bytes or str})."""
    fs = lfs(size)
    for name, data in files.items():
        parent = os.path.dirname(name.strip("/"))
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(name, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    fs.unmount()
    return bytes(fs.context.buffer)


def lfs_files(image, size=None):
    """{path: bytes} of every file in a littlefs image."""
    fs = lfs(size or len(image), image)
    out = {}
    for root, _, names in fs.walk("/"):
        for n in names:
            path = f"{root.rstrip('/')}/{n}".lstrip("/")
            with fs.open(path, "rb") as f:
                out[path] = f.read()
    return out


# --- NVS -----------------------------------------------------------------------------

INT_TYPES = ("u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64")


def nvs_values(csv_path):
    """The simulator's nvs.json contents for an esp-idf-nvs-partition-gen CSV."""
    out, namespace = {}, None
    base = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, newline="", encoding="utf8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        for lineno, row in enumerate(rows, 2):
            where = f"{csv_path}:{lineno}"
            key, kind = (row.get("key") or "").strip(), (row.get("type") or "").strip()
            enc, value = (row.get("encoding") or "").strip(), row.get("value") or ""
            if kind == "namespace":
                namespace = out.setdefault(key, {})
                continue
            if namespace is None:
                raise EpxError(f"{where}: {key}: no namespace row before it")
            if kind == "file":
                path = value if os.path.isabs(value) else os.path.join(base, value)
                with open(path, "rb") as v:
                    value = v.read()
                if enc == "string":
                    value = value.decode()
            elif kind != "data":
                raise EpxError(f"{where}: {key}: type must be namespace, data or file, not {kind!r}")
            try:
                if enc in INT_TYPES:
                    namespace[key] = [enc, int(value, 0)]
                elif enc == "string":
                    namespace[key] = ["str", value]
                elif enc in ("binary", "hex2bin", "base64"):
                    raw = value.encode() if isinstance(value, str) and enc == "binary" else value
                    if enc == "hex2bin":
                        raw = bytes.fromhex(value.decode() if isinstance(value, bytes) else value)
                    elif enc == "base64":
                        raw = base64.b64decode(value)
                    namespace[key] = ["blob", base64.b64encode(raw).decode()]
                else:
                    raise EpxError(f"{where}: {key}: unknown encoding {enc!r}")
            except ValueError as e:
                raise EpxError(f"{where}: {key}: {e}")
    return out


def nvs_image(csv_path, size):
    """The NVS partition image esp-idf-nvs-partition-gen makes from `csv_path`."""
    nvs_values(csv_path)  # clear errors before the generator's own
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "nvs.bin")
        result = subprocess.run(
            [sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate",
             os.path.abspath(csv_path), out, hex(size), "--outdir", tmp],
            capture_output=True, text=True, cwd=os.path.dirname(os.path.abspath(csv_path)))
        if result.returncode or not os.path.exists(out):
            lines = (result.stderr + result.stdout).strip().splitlines() or ["failed"]
            raise EpxError(f"{csv_path}: NVS generation: {lines[-1]}")
        with open(out, "rb") as f:
            return f.read()


# --- devices and real flash -------------------------------------------------------------

def vfs_files(config=None, files=None):
    out = dict(files or {})
    if config is not None:
        with open(config, "rb") as f:
            out["config.txt"] = f.read()
    return out


def into_device(folder, files, nvs_csv=None, board=None):
    """Write the filesystem (and NVS) of a simulated device; create its flash if needed."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "flash.bin")
    flash = Flash(path) if os.path.exists(path) else Flash.create(path, **({"board": board} if board else {}))
    vfs = flash.part("vfs")
    flash.write("vfs", lfs_image(files, vfs.size))
    if nvs_csv:
        flash.write("nvs", nvs_image(nvs_csv, flash.part("nvs").size))
        with open(os.path.join(folder, "nvs.json"), "w") as f:
            json.dump(nvs_values(nvs_csv), f, indent=1)
    return flash


def real_files(out, parts, files, nvs_csv=None):
    """Images for a real device in `out`, and the esptool arguments that flash them."""
    os.makedirs(out, exist_ok=True)
    vfs = partitions.find(parts, "vfs")
    flash_args = []
    path = os.path.join(out, "vfs.bin")
    with open(path, "wb") as f:
        f.write(lfs_image(files, vfs.size))
    if nvs_csv:
        nvs = partitions.find(parts, "nvs")
        npath = os.path.join(out, "nvs.bin")
        with open(npath, "wb") as f:
            f.write(nvs_image(nvs_csv, nvs.size))
        flash_args += [hex(nvs.offset), npath]
    flash_args += [hex(vfs.offset), path]
    return flash_args


def esptool_command(flash_args, port="PORT"):
    return ["esptool", "--chip", "esp32", "--port", port, "write-flash"] + flash_args


def merged(out_path, parts, app, files, bootloader, nvs_csv=None, flash_size="4MB"):
    """One image of the whole flash from 0 (esptool merge-bin): bootloader, table, app, vfs."""
    with tempfile.TemporaryDirectory() as tmp:
        def put(name, data):
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            return p

        args = [hex(BOOTLOADER_OFFSET), put("bootloader.bin", read_bytes(bootloader)),
                hex(partitions.TABLE_OFFSET), put("partitions.bin", table_binary(parts)),
                hex(partitions.find(parts, "ota_0").offset), put("app.bin", read_bytes(app))]
        args += real_files(os.path.join(tmp, "fs"), parts, files, nvs_csv)
        result = subprocess.run(
            [sys.executable, "-m", "esptool", "--chip", "esp32", "merge-bin", "-o", os.fspath(out_path),
             "--pad-to-size", flash_size] + args,
            capture_output=True, text=True)
        if result.returncode:
            lines = (result.stderr + result.stdout).strip().splitlines() or ["failed"]
            raise EpxError(f"esptool merge-bin: {lines[-1]}")
    return out_path


def read_bytes(data):
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    with open(data, "rb") as f:
        return f.read()
