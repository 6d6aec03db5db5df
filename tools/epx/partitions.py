"""ESP-IDF partition tables (CSV) read and checked as ESP-IDF's gen_esp32part does."""

import csv
from collections import namedtuple

from .errors import EpxError

TABLE_OFFSET = 0x8000
TABLE_SIZE = 0x1000
FLASH_SIZE = 4 * 1024 * 1024
APP_ALIGN = 0x10000
DATA_ALIGN = 0x1000
OTADATA_SIZE = 0x2000

TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    "app": {"factory": 0x00, **{f"ota_{i}": 0x10 + i for i in range(16)}, "test": 0x20},
    "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
             "efuse": 0x05, "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82,
             "littlefs": 0x83},
}

Partition = namedtuple("Partition", "name type subtype offset size")


def number(text, where):
    text = text.strip()
    try:
        scale = 1
        if text[-1:] in "KkMm":
            scale = 1024 if text[-1] in "Kk" else 1024 * 1024
            text = text[:-1]
        return int(text, 0) * scale
    except (ValueError, IndexError):
        raise EpxError(f"{where}: {text!r} is not a number")


def load(path, flash_size=FLASH_SIZE):
    """Parse and check a partitions.csv; return its partitions in flash order."""
    parts = []
    offset = TABLE_OFFSET + TABLE_SIZE
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or row[0].strip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            row = [c.strip() for c in row] + [""] * 6
            name, kind, subtype, at, size = row[:5]
            if kind not in TYPES:
                raise EpxError(f"{where}: unknown type {kind!r}")
            if subtype not in SUBTYPES[kind]:
                raise EpxError(f"{where}: unknown {kind} subtype {subtype!r}")
            align = APP_ALIGN if kind == "app" else DATA_ALIGN
            if at:
                start = number(at, where)
            else:
                start = (offset + align - 1) // align * align
            length = number(size, where)
            if start % align:
                raise EpxError(f"{where}: {name} at {start:#x} is not aligned to {align:#x}")
            if start < offset:
                raise EpxError(f"{where}: {name} at {start:#x} overlaps what comes before (ends {offset:#x})")
            parts.append(Partition(name, kind, subtype, start, length))
            offset = start + length
    check(path, parts, flash_size)
    return parts


def check(path, parts, flash_size):
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise EpxError(f"{path}: partition names repeat")
    subtypes = {(p.type, p.subtype): p for p in parts}
    for needed in (("app", "ota_0"), ("app", "ota_1"), ("data", "ota"), ("data", "nvs")):
        if needed not in subtypes:
            raise EpxError(f"{path}: no {needed[0]} partition of subtype {needed[1]}")
    if subtypes[("data", "ota")].size != OTADATA_SIZE:
        raise EpxError(f"{path}: otadata must be {OTADATA_SIZE:#x} bytes")
    if "vfs" not in names:
        raise EpxError(f"{path}: no 'vfs' partition for the filesystem")
    end = parts[-1].offset + parts[-1].size
    if end > flash_size:
        raise EpxError(f"{path}: ends at {end:#x}, past the {flash_size // 1024 // 1024} MB flash")


def find(parts, name):
    for p in parts:
        if p.name == name:
            return p
    raise EpxError(f"no partition named {name!r}")
