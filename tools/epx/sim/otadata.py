"""ESP-IDF's otadata: two esp_ota_select_entry_t, one per 4 KB sector, and its state names.

    struct { uint32_t ota_seq; uint8_t seq_label[20]; uint32_t ota_state; uint32_t crc; }

`crc` is esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4), i.e. zlib's crc32 seeded 0xFFFFFFFF
(as ESP-IDF's otatool.py computes it).
"""

import struct
import zlib

ENTRY = struct.Struct("<I20sII")
SECTOR = 0x1000
UNSET = 0xFFFFFFFF

NEW, PENDING_VERIFY, VALID, INVALID, ABORTED, UNDEFINED = 0, 1, 2, 3, 4, 0xFFFFFFFF
STATE_NAMES = {NEW: "new", PENDING_VERIFY: "pending_verify", VALID: "valid", INVALID: "invalid",
               ABORTED: "aborted", UNDEFINED: "undefined"}


def crc(seq):
    return zlib.crc32(struct.pack("<I", seq), UNSET) & 0xFFFFFFFF


class Entry:
    __slots__ = ("seq", "label", "state", "crc")

    def __init__(self, seq=UNSET, state=UNDEFINED, label=b"\xff" * 20, crc_=None):
        self.seq, self.state, self.label = seq, state, label
        self.crc = crc(seq) if crc_ is None else crc_

    @classmethod
    def unpack(cls, raw):
        seq, label, state, c = ENTRY.unpack(raw[:ENTRY.size])
        return cls(seq, state, label, c)

    def pack(self):
        return ENTRY.pack(self.seq, self.label, self.state, self.crc)

    def invalid(self):
        """bootloader_common_ota_select_invalid."""
        return self.seq == UNSET or self.state in (INVALID, ABORTED)

    def valid(self):
        """bootloader_common_ota_select_valid."""
        return not self.invalid() and self.crc == crc(self.seq)

    def initial(self):
        """Erased or corrupt: what the bootloader treats as 'no otadata written yet'."""
        return self.seq == UNSET or self.crc != crc(self.seq)

    def __repr__(self):
        return f"Entry(seq={self.seq:#x}, state={STATE_NAMES.get(self.state, self.state)})"


def read(raw):
    """The two entries of an otadata partition's bytes."""
    return [Entry.unpack(raw[0:ENTRY.size]), Entry.unpack(raw[SECTOR:SECTOR + ENTRY.size])]


def sector(entry):
    """One erased sector holding `entry`, as write_otadata leaves it."""
    return entry.pack() + b"\xff" * (SECTOR - ENTRY.size)


def active(entries):
    """bootloader_common_get_active_otadata: index of the valid entry with the highest seq."""
    valid = [i for i, e in enumerate(entries) if e.valid()]
    if not valid:
        return -1
    return max(valid, key=lambda i: entries[i].seq)


def set_boot(entries, slot, app_count=2, rollback=True):
    """esp_ota_set_boot_partition for OTA slot `slot`: returns (index to write, new entry).

    As esp_rewrite_ota_data: the smallest seq not below the active one that maps to `slot`,
    written to the other sector; state NEW when rollback is enabled, else UNDEFINED."""
    i = active(entries)
    if i == -1:
        seq, index = slot + 1, 0
    else:
        base, n = (slot + 1) % app_count, 0
        while entries[i].seq > base + n * app_count:
            n += 1
        seq, index = base + n * app_count, (i + 1) % 2
    entry = entries[index]
    return index, Entry(seq, NEW if rollback else UNDEFINED, entry.label)
