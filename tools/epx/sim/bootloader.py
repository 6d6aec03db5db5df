"""The simulated second-stage bootloader: ESP-IDF's slot choice and rollback, on a flash file.

Follows bootloader_utility_get_selected_boot_partition and bootloader_utility_load_boot_image
(ESP-IDF v5.2, CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, no factory partition).
"""

from collections import namedtuple

from . import appimage, otadata
from ..errors import EpxError

Boot = namedtuple("Boot", "slot index state desc exe actions")


def ota_slots(flash):
    """The OTA app partitions by slot number (subtype ota_N)."""
    slots = {}
    for p in flash.parts:
        if p.type == "app" and p.subtype.startswith("ota_"):
            slots[int(p.subtype[4:])] = p.name
    return [slots[i] for i in sorted(slots)]


def write_entry(flash, index, entry):
    flash.write("otadata", otadata.sector(entry), offset=index * otadata.SECTOR)


def select(flash):
    """(start index, entries, actions): the slot to try first, and what was written."""
    entries = otadata.read(flash.read("otadata"))
    count = len(ota_slots(flash))
    actions = []
    for i, e in enumerate(entries):
        if e.state == otadata.PENDING_VERIFY:
            e.state = otadata.ABORTED
            write_entry(flash, i, e)
            actions.append(f"otadata[{i}] pending_verify -> aborted")
    initial = False
    if all(e.invalid() for e in entries) or count == 0:
        start = 0
        initial = all(e.initial() for e in entries)
    else:
        i = otadata.active(entries)
        if i == -1:
            start = -1  # ota data invalid and no factory: try every partition
        else:
            start = (entries[i].seq - 1) % count
            if entries[i].state == otadata.NEW:
                entries[i].state = otadata.PENDING_VERIFY
                write_entry(flash, i, entries[i])
                actions.append(f"otadata[{i}] new -> pending_verify")
    return start, entries, initial, actions


def boot(flash):
    """Choose and load the app to run: a Boot; EpxError if no slot holds a valid image."""
    start, entries, initial, actions = select(flash)
    slots = ota_slots(flash)
    order = list(range(start, -1, -1)) + list(range(start + 1, len(slots)))
    errors = []
    for index in order:
        if index < 0:
            continue
        try:
            desc, exe = appimage.read(flash.read(slots[index]))
        except EpxError as e:
            errors.append(f"{slots[index]}: {e}")
            actions.append(f"{slots[index]} not bootable")
            continue
        if initial:
            entry = otadata.Entry(index + 1, otadata.VALID)
            write_entry(flash, 0, entry)
            entries[0] = entry
            actions.append(f"otadata[0] seq={index + 1} valid")
        return Boot(slots[index], index, running_state(entries, index, len(slots)), desc, exe, actions)
    raise EpxError("no bootable app partition (" + "; ".join(errors) + ")")


def running_state(entries, index, count):
    """esp_ota_get_state_partition for the booted slot: the state of the entry naming it."""
    i = otadata.active(entries)
    candidates = [i] if i != -1 else []
    candidates += [j for j in (0, 1) if j not in candidates]
    for j in candidates:
        e = entries[j]
        if e.seq != otadata.UNSET and e.crc == otadata.crc(e.seq) and (e.seq - 1) % count == index:
            return otadata.STATE_NAMES.get(e.state, str(e.state))
    return "undefined"


def set_boot(flash, slot_name):
    """esp_ota_set_boot_partition, for tests and tools that stage an update on the host."""
    slots = ota_slots(flash)
    entries = otadata.read(flash.read("otadata"))
    index, entry = otadata.set_boot(entries, slots.index(slot_name), len(slots))
    write_entry(flash, index, entry)
    return entry


def mark_valid(flash, slot_name):
    """esp_ota_mark_app_valid_cancel_rollback for `slot_name` (host side, for tests)."""
    slots = ota_slots(flash)
    entries = otadata.read(flash.read("otadata"))
    for i, e in enumerate(entries):
        if e.valid() and (e.seq - 1) % len(slots) == slots.index(slot_name):
            e.state = otadata.VALID
            write_entry(flash, i, e)
            return e
    raise EpxError(f"{slot_name}: no otadata entry names it")
