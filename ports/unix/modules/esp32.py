# The simulated ESP32 `esp32` module (MicroPython v1.25.0, ports/esp32): NVS persisted in
# <device>/nvs.json, Partition over <device>/flash.bin laid out by the partition table the
# host wrote at 0x8000, OTA data in ESP-IDF's format. Errors are check_esp_err's:
# OSError(-esp_err, "ESP_ERR_...").
import binascii as _binascii
from errno import ENOMEM as _ENOMEM
import hashlib as _hashlib
import json as _json
import struct as _struct
import time as _time
import _simirq
import _simram

import sim as _sim
from sim import powercut as _powercut

WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True
HEAP_DATA = const(4)
HEAP_EXEC = const(1)

# esp_err.h / nvs.h / esp_ota_ops.h codes; check_esp_err raises OSError(-code, name).
_ERRORS = {
    -1: "ESP_FAIL",
    0x102: "ESP_ERR_INVALID_ARG",
    0x105: "ESP_ERR_NOT_FOUND",
    0x1102: "ESP_ERR_NVS_NOT_FOUND",
    0x1104: "ESP_ERR_NVS_READ_ONLY",
    0x1109: "ESP_ERR_NVS_KEY_TOO_LONG",
    0x110C: "ESP_ERR_NVS_INVALID_LENGTH",
    0x110E: "ESP_ERR_NVS_VALUE_TOO_LONG",
    0x1503: "ESP_ERR_OTA_VALIDATE_FAILED",
}


def _esp_err(code):
    return OSError(-code, _ERRORS.get(code, "ERROR"))


def wake_on_touch(wake):
    pass


def wake_on_ulp(wake):
    pass


def wake_on_ext0(pin, level):
    pass


def wake_on_ext1(pins, level):
    pass


def gpio_deep_sleep_hold(enable):
    import machine

    machine._deep_sleep_hold(enable)


def raw_temperature():
    return 128


# nvs_open (nvs_api.cpp: nvs_open_from_partition) takes an NVSHandleSimple and an
# NVSHandleEntry from the IDF heap (20 bytes each on a 32-bit chip, a 4-byte block header
# each; ESP_ERR_NO_MEM when either fails); only nvs_close gives them back, and the port's
# NVS has neither a close method nor a finaliser (esp32_nvs.c): each NVS() made holds its
# handle until the chip resets.
_NVS_HANDLE_BYTES = const(48)
_nvs_open = 0  # handles open (the host reads them: ctl state)


# The IDF heap the port reports (modesp32.c:esp32_idf_heap_info, one region here): fixed
# figures, less what the simulated C side holds for good (NVS handles, above).
_IDF_TOTAL = const(98304)
_IDF_FREE = const(61440)
_IDF_LARGEST = const(40960)


def _idf_free():
    return _IDF_FREE - _nvs_open * _NVS_HANDLE_BYTES


def _nvs_take():
    if _simram.info() is None:
        return _idf_free() >= _NVS_HANDLE_BYTES
    # the modelled ESP32 RAM (simram.c): the handle's two objects, held until reset
    handle = _simram.take(_NVS_HANDLE_BYTES // 2 - 4)
    if handle is None:
        return False
    if _simram.take(_NVS_HANDLE_BYTES // 2 - 4) is None:
        _simram.give(handle)
        return False
    return True


def idf_heap_info(capabilities):
    regions = _simram.info()  # the modelled ESP32 RAM, when the simulator models it
    if regions is not None:
        return regions
    free = _idf_free()
    return [(_IDF_TOTAL, free, min(_IDF_LARGEST, free), free)]


# --- NVS --------------------------------------------------------------------------------

_INT_TYPES = ("u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64")


def _nvs_load():
    data = _sim.read_file("nvs.json")
    return _json.loads(data) if data else {}


def _nvs_store(store):
    _sim.write_file("nvs.json", _json.dumps(store).encode())


_KEY_MAX = const(15)  # nvs::Item::MAX_KEY_LENGTH
_CHUNK_MAX = const(4000)  # nvs::Page::CHUNK_MAX_SIZE: a blob chunk is 125 entries of 32 bytes


def _str(obj):
    # mp_obj_str_get_str: a str or bytes, else TypeError
    if isinstance(obj, bytes):
        return obj.decode()
    if not isinstance(obj, str):
        raise TypeError("can't convert '%s' object to str implicitly" % type(obj).__name__)
    return obj


def _max_blob():
    # nvs::Storage::writeMultiPageBlob: min(pages - 1, 127) chunks of the nvs partition
    p = _find_first(1, 0x02, None)
    return min(p[3] // 4096 - 1, 127) * _CHUNK_MAX




class NVS:
    def __init__(self, namespace):
        global _nvs_open
        namespace = _str(namespace)
        if len(namespace) > _KEY_MAX:
            # nvs_open finds a namespace by its first 15 characters, or writes a new one
            # (nvs::Page::writeItem: ESP_ERR_NVS_KEY_TOO_LONG)
            if namespace[:_KEY_MAX] not in _nvs_load():
                raise _esp_err(0x1109)
            namespace = namespace[:_KEY_MAX]
        if not _nvs_take():
            raise OSError(_ENOMEM, "ESP_ERR_NO_MEM")  # check_esp_err maps it to ENOMEM
        _nvs_open += 1
        self._ns = namespace

    def __repr__(self):
        return "<NVS namespace>"

    def _get(self, key, kind):
        _sim.stack_mark()
        # nvs::Page::findItem compares 15 characters; items are found by type too
        item = _nvs_load().get(self._ns, {}).get(_str(key)[:_KEY_MAX])
        if item is None or item[0] != kind:
            raise _esp_err(0x1102)
        return item[1]

    def _set(self, key, kind, value):
        _sim.stack_mark()
        key = _str(key)
        if len(key) > _KEY_MAX:
            raise _esp_err(0x1109)
        store = _nvs_load()
        store.setdefault(self._ns, {})[key] = [kind, value]
        _nvs_store(store)

    def set_i32(self, key, value):
        key = _str(key)
        self._set(key, "i32", _sim.get_int(value))

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        key = _str(key)
        if isinstance(value, str):
            value = value.encode()
        try:
            value = bytes(memoryview(value))
        except TypeError:
            raise TypeError("object with buffer protocol required")
        if len(value) > _max_blob():
            raise _esp_err(0x110E)
        self._set(key, "blob", _binascii.b2a_base64(value, newline=False).decode())

    def get_blob(self, key, buf):
        key = _str(key)
        if isinstance(buf, (bytes, str)):
            raise TypeError("object with buffer protocol required")  # not writable
        try:
            n = len(memoryview(buf))
        except TypeError:
            raise TypeError("object with buffer protocol required")
        value = _binascii.a2b_base64(self._get(key, "blob"))
        if len(value) > n:
            raise _esp_err(0x110C)
        memoryview(buf)[: len(value)] = value
        return len(value)

    def erase_key(self, key):
        key = _str(key)[:_KEY_MAX]
        store = _nvs_load()
        if key not in store.get(self._ns, {}):
            raise _esp_err(0x1102)
        del store[self._ns][key]
        _nvs_store(store)

    def commit(self):
        pass


# --- flash and partitions ---------------------------------------------------------------

_TABLE = const(0x8000)
_ERASE_US = const(3)  # _simirq.timing: per sector erased, per 256-byte page written
_WRITE_US = const(4)
_SECTOR = const(4096)
_flash = None


def _flash_file():
    global _flash
    if _flash is None:
        _flash = _sim.open_file("flash.bin", "r+b")
    return _flash


def _flash_read(addr, buf):
    f = _flash_file()
    f.seek(addr)
    f.readinto(buf)


@micropython.viper
def _nor_write(old: ptr8, new: ptr8, n: int):
    # NOR flash: a write only clears bits; erase sets them.
    i = 0
    while i < n:
        old[i] &= new[i]
        i += 1


@micropython.viper
def _xor(buf: ptr8, n: int, acc: int) -> int:
    i = 0
    while i < n:
        acc ^= buf[i]
        i += 1
    return acc


_scratch = bytearray(_SECTOR)  # flash operations allocate nothing: the heap is the ESP32's
_erased = b"\xff" * _SECTOR


def _flash_write(addr, data):
    cut = _powercut.at(addr)
    mv = memoryview(data)
    if cut:
        mv = mv[: len(mv) // 2]
    f = _flash_file()
    done = 0
    while done < len(mv):
        piece = mv[done : done + _SECTOR]
        old = memoryview(_scratch)[: len(piece)]
        _flash_read(addr + done, old)
        _nor_write(old, piece, len(piece))
        f.seek(addr + done)
        f.write(old)
        done += len(piece)
    _flash_busy(((addr + len(mv) + 255) // 256 - addr // 256) * _simirq.timing(_WRITE_US))
    if cut:
        _powercut.stop()


def _flash_busy(us):
    import machine

    machine._flash_busy(us)


def _flash_erase(addr, size):
    cut = _powercut.at(addr)
    if cut:
        size //= 2
    size0 = size
    f = _flash_file()
    f.seek(addr)
    while size > 0:
        n = min(size, _SECTOR)
        f.write(memoryview(_erased)[:n])
        size -= n
    _flash_busy((size0 + _SECTOR - 1) // _SECTOR * _simirq.timing(_ERASE_US))
    if cut:
        _powercut.stop()


_table = None


def _partitions():
    # The binary partition table: 32-byte entries, magic 0x50AA, until the MD5 entry or 0xFF.
    global _table
    if _table is None:
        _table = []
        raw = bytearray(0xC00)
        _flash_read(_TABLE, raw)
        for at in range(0, len(raw), 32):
            magic, kind, subtype, offset, size, label, flags = _struct.unpack_from("<HBBII16sI", raw, at)
            if magic != 0x50AA:
                break
            label = label.split(b"\0")[0].decode()
            _table.append((kind, subtype, offset, size, label, flags & 1))
    return _table


# OTA data: two 32-byte entries (ota_seq, seq_label[20], ota_state, crc) in two sectors.
_OTA_NEW = const(0)
_OTA_PENDING_VERIFY = const(1)
_OTA_VALID = const(2)
_OTA_INVALID = const(3)
_OTA_ABORTED = const(4)
_OTA_UNDEFINED = const(0xFFFFFFFF)


def _ota_crc(seq):
    return _binascii.crc32(_struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


def _otadata():
    part = _find_first(1, 0, None)
    entries = []
    if part is not None:
        buf = bytearray(32)
        for i in range(2):
            _flash_read(part[2] + i * _SECTOR, buf)
            seq, state, crc = _struct.unpack_from("<I20xII", buf)
            entries.append([seq, state, crc])
    return part, entries


def _entry_valid(e):
    return e[0] != 0xFFFFFFFF and e[2] == _ota_crc(e[0]) and e[1] not in (_OTA_INVALID, _OTA_ABORTED)


def _active(entries):
    # bootloader_common_get_active_otadata: the valid entry with the higher sequence.
    best = -1
    for i, e in enumerate(entries):
        if _entry_valid(e) and (best < 0 or e[0] > entries[best][0]):
            best = i
    return best


def _write_ota_entry(part, index, seq, state):
    buf = bytearray(b"\xff" * 32)
    _struct.pack_into("<I", buf, 0, seq)
    _struct.pack_into("<II", buf, 24, state, _ota_crc(seq))
    _flash_erase(part[2] + index * _SECTOR, _SECTOR)
    _flash_write(part[2] + index * _SECTOR, buf)


def _find_first(kind, subtype, label):
    for p in _partitions():
        if p[0] == kind and (subtype == 0xFF or p[1] == subtype) and (label is None or p[4] == label):
            return p
    return None


def _ota_apps():
    return [p for p in _partitions() if p[0] == 0 and 0x10 <= p[1] < 0x20]


def _boot_partition():
    _, entries = _otadata()
    apps = _ota_apps()
    i = _active(entries)
    if i >= 0 and apps:
        return apps[(entries[i][0] - 1) % len(apps)]
    return _find_first(0, 0x00, None) or (apps[0] if apps else None)


def _verify_image(p):
    # esp_image_verify: header, segments, checksum and appended SHA-256.
    head = bytearray(24)
    _flash_read(p[2], head)
    if head[0] != 0xE9:
        return False
    at = 24
    check = 0xEF
    seg = bytearray(8)
    for _ in range(head[1]):
        _flash_read(p[2] + at, seg)
        _, length = _struct.unpack("<II", seg)
        at += 8
        if at + length > p[3]:
            return False
        left = length
        while left:
            n = min(left, _SECTOR)
            view = memoryview(_scratch)[:n]
            _flash_read(p[2] + at, view)
            check = _xor(view, n, check)
            at += n
            left -= n
    at = (at + 16) & ~15
    stored = bytearray(1)
    _flash_read(p[2] + at - 1, stored)
    if stored[0] != check:
        return False
    if head[23]:
        h = _hashlib.sha256()
        done = 0
        while done < at:
            n = min(at - done, _SECTOR)
            view = memoryview(_scratch)[:n]
            _flash_read(p[2] + done, view)
            h.update(view)
            done += n
        digest = bytearray(32)
        _flash_read(p[2] + at, digest)
        if h.digest() != digest:
            return False
    return True


class Partition:
    BOOT = const(0)
    RUNNING = const(1)
    TYPE_APP = const(0)
    TYPE_DATA = const(1)

    def __init__(self, id, block_size=4096):
        if isinstance(id, int):
            if id == 0:
                p = _boot_partition()
            elif id == 1:
                p = _find_first(0, 0xFF, _sim.BOOT["slot"])
            else:
                raise ValueError
        else:
            p = _find_first(0, 0xFF, id) or _find_first(1, 0xFF, id)
        if p is None:
            raise OSError(2)  # ENOENT, as esp32_partition_new
        self._p = p
        self._block_size = block_size

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=4096):
        found = []
        for p in _partitions():
            if p[0] == type and (subtype == 0xFF or p[1] == subtype) and (label is None or p[4] == label):
                found.append(Partition(p[4], block_size))
        return found

    def __repr__(self):
        p = self._p
        return "<Partition type=%u, subtype=%u, address=%u, size=%u, label=%s, encrypted=%u>" % (
            p[0], p[1], p[2], p[3], p[4], p[5])

    def info(self):
        p = self._p
        return (p[0], p[1], p[2], p[3], p[4], bool(p[5]))

    def _range(self, offset, n):
        if offset < 0 or offset + n > self._p[3]:
            raise _esp_err(0x102)
        return self._p[2] + offset

    def readblocks(self, block_num, buf, offset=0):
        _flash_read(self._range(block_num * self._block_size + offset, len(buf)), buf)

    def writeblocks(self, block_num, buf, offset=None):
        at = block_num * self._block_size + (offset or 0)
        addr = self._range(at, len(buf))
        if offset is None:
            # A plain write erases first, in whole sectors (keeping what shares them).
            first = addr // _SECTOR * _SECTOR
            last = (addr + len(buf) + _SECTOR - 1) // _SECTOR * _SECTOR
            keep = bytearray(last - first)
            _flash_read(first, keep)
            keep[addr - first : addr - first + len(buf)] = buf
            _flash_erase(first, len(keep))
            _flash_write(first, keep)
        else:
            _flash_write(addr, buf)

    def ioctl(self, cmd, arg):
        if cmd in (1, 2, 3):
            return 0
        if cmd == 4:
            return self._p[3] // self._block_size
        if cmd == 5:
            return self._block_size
        if cmd == 6:
            if self._block_size != _SECTOR:
                return -22
            _flash_erase(self._range(arg * _SECTOR, _SECTOR), _SECTOR)
            return 0
        return None

    def set_boot(self):
        p = self._p
        part, entries = _otadata()
        if p[0] != 0 or part is None:
            raise _esp_err(0x105)
        if not _verify_image(p):
            raise _esp_err(0x1503)
        if p[1] == 0x00:  # factory: erase otadata
            _flash_erase(part[2], 2 * _SECTOR)
            return
        apps = _ota_apps()
        n = len(apps)
        slot = p[1] - 0x10
        active = _active(entries)
        if active >= 0:
            seq = entries[active][0]
            i = 0
            while seq > (slot + 1) % n + i * n:
                i += 1
            _write_ota_entry(part, (~active) & 1, (slot + 1) % n + i * n, _OTA_NEW)
        else:
            _write_ota_entry(part, 0, slot + 1, _OTA_NEW)

    def get_next_update(self):
        apps = _ota_apps()
        if not apps:
            raise _esp_err(0x105)
        for i, p in enumerate(apps):
            if p[4] == self._p[4]:
                return Partition(apps[(i + 1) % len(apps)][4])
        return Partition(apps[0][4])

    @staticmethod
    def mark_app_valid_cancel_rollback():
        # esp_ota_mark_app_valid_cancel_rollback (app_update/esp_ota_ops.c): the active
        # otadata entry becomes VALID; no active entry (blank otadata, a serial flash) is
        # "Running firmware is factory": ESP_FAIL.
        part, entries = _otadata()
        if part is None:
            raise _esp_err(0x105)
        active = _active(entries)
        if active < 0 or not _ota_apps():
            print("E (%d) esp_ota_ops: Running firmware is factory" % _time.ticks_ms())
            raise _esp_err(-1)
        if entries[active][1] != _OTA_VALID:
            _write_ota_entry(part, active, entries[active][0], _OTA_VALID)
