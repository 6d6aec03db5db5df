"""A device's flash: one file laid out from the board's partitions.csv, ESP-IDF's table at 0x8000."""

import hashlib
import os
import struct

from .. import partitions
from ..errors import EpxError
from ..paths import BOARDS

ENTRY = struct.Struct("<2sBBII16sI")
ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
TABLE_MAX = 0xC00
SECTOR = 0x1000
ERASED = 0xFF
DEFAULT_BOARD = "EPX_ESP32"


def table(board=DEFAULT_BOARD):
    return partitions.load(BOARDS / board / "partitions.csv")


def table_binary(parts):
    """The partition table as gen_esp32part.py writes it: entries, the MD5 entry, 0xFF fill."""
    out = b"".join(
        ENTRY.pack(ENTRY_MAGIC, partitions.TYPES[p.type], partitions.SUBTYPES[p.type][p.subtype],
                   p.offset, p.size, p.name.encode(), 0)
        for p in parts)
    out += MD5_MAGIC + hashlib.md5(out).digest()
    return out + b"\xff" * (TABLE_MAX - len(out))


def parse_table(raw):
    """Partitions of a binary table (checking the MD5 entry)."""
    types = {v: k for k, v in partitions.TYPES.items()}
    parts = []
    for at in range(0, TABLE_MAX, ENTRY.size):
        chunk = raw[at:at + ENTRY.size]
        if chunk[:2] == MD5_MAGIC[:2]:
            if chunk[16:32] != hashlib.md5(raw[:at]).digest():
                raise EpxError("partition table: MD5 mismatch")
            return parts
        if chunk[:2] != ENTRY_MAGIC:
            break
        _, kind, sub, offset, size, label, _ = ENTRY.unpack(chunk)
        kind_name = types.get(kind, str(kind))
        subs = {v: k for k, v in partitions.SUBTYPES.get(kind_name, {}).items()}
        parts.append(partitions.Partition(label.rstrip(b"\0").decode(), kind_name,
                                          subs.get(sub, str(sub)), offset, size))
    if not parts:
        raise EpxError("partition table: no entries")
    return parts


class Flash:
    """Read and write partitions of a flash image file by name."""

    def __init__(self, path, parts=None):
        self.path = os.fspath(path)
        if parts is None:
            with open(self.path, "rb") as f:
                f.seek(partitions.TABLE_OFFSET)
                parts = parse_table(f.read(TABLE_MAX))
        self.parts = parts

    @classmethod
    def create(cls, path, board=DEFAULT_BOARD, size=partitions.FLASH_SIZE):
        """A fully erased flash holding only the partition table."""
        parts = table(board)
        with open(path, "wb") as f:
            f.write(b"\xff" * size)
            f.seek(partitions.TABLE_OFFSET)
            f.write(table_binary(parts))
        return cls(path, parts)

    def part(self, name):
        return partitions.find(self.parts, name)

    def read(self, name, offset=0, size=None):
        p = self.part(name)
        size = p.size - offset if size is None else size
        with open(self.path, "rb") as f:
            f.seek(p.offset + offset)
            return f.read(size)

    def write(self, name, data, offset=0, erase=False):
        """Write into a partition; `erase` first fills the whole partition with 0xFF."""
        p = self.part(name)
        if offset + len(data) > p.size:
            raise EpxError(f"{name}: {len(data)} bytes at {offset:#x} do not fit {p.size:#x}")
        with open(self.path, "r+b") as f:
            if erase:
                f.seek(p.offset)
                f.write(b"\xff" * p.size)
            f.seek(p.offset + offset)
            f.write(data)
