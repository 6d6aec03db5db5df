"""Host app images, otadata and the simulated bootloader's slot choice (no firmware runs)."""

import subprocess
import sys

import pytest

from epx.errors import EpxError
from epx.sim import appimage, bootloader, otadata
from epx.sim.flash import Flash, parse_table, table_binary, table

EXE = b"\x7fELF pretend executable\n" * 100 + b"odd"


def test_app_image_round_trip():
    data = appimage.build(EXE, "h2o-0.1.0-3-gabc123")
    desc, exe = appimage.read(data + b"\xff" * 4096)  # as read from an erased slot
    assert exe == EXE
    assert desc["version"] == "h2o-0.1.0-3-gabc123"
    assert desc["project_name"] == "epx" and desc["idf_ver"] == "v5.2.2"
    assert desc["magic"] == 0xABCD5432
    assert data[0] == 0xE9 and data[12] == 0  # magic; chip id ESP32


def test_esptool_image_info_calls_it_valid(tmp_path):
    path = tmp_path / "app.bin"
    path.write_bytes(appimage.build(EXE, "t-1"))
    out = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "image-info", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert "Checksum:" in out and "(valid)" in out.split("Checksum:")[1].splitlines()[0]
    assert "(valid)" in out.split("Validation hash:")[1].splitlines()[0]
    assert "App version: t-1" in out and "Project name: epx" in out


def test_host_firmware_image_fits_the_slot(firmware, tmp_path):
    fw = firmware("simcheck")
    desc, exe = appimage.read(fw.image)
    assert len(fw.image) <= appimage.APP_SLOT
    assert desc["version"] == fw.version
    assert exe[:4] == b"\x7fELF"


@pytest.mark.parametrize("at", [0, 40, 300, -40])
def test_corrupt_image_is_refused(at):
    data = bytearray(appimage.build(EXE, "t-1"))
    data[at] ^= 0x55
    with pytest.raises(EpxError):
        appimage.read(bytes(data))


def test_image_for_another_chip_is_refused():
    from esptool.bin_image import ESP32C3FirmwareImage, ImageSegment

    image = ESP32C3FirmwareImage()
    image.segments.append(ImageSegment(0x3C000020, b"\0" * 256))
    with pytest.raises(EpxError, match="chip id"):
        appimage.read(image.save(None))


def test_too_big_for_the_slot():
    with pytest.raises(EpxError, match="app slot"):
        appimage.build(b"x" * 0x1E0000, "t-1")


def test_partition_table_binary():
    parts = table()
    raw = table_binary(parts)
    assert len(raw) == 0xC00 and raw[:2] == b"\xaa\x50"
    assert parse_table(raw) == parts
    bad = bytearray(raw)
    bad[20] ^= 1
    with pytest.raises(EpxError, match="MD5"):
        parse_table(bytes(bad))


def test_otadata_crc_as_esp_idf():
    assert otadata.crc(1) == 0x4743989A
    assert otadata.crc(2) == 0x55F63774
    e = otadata.Entry(3, otadata.NEW)
    assert otadata.Entry.unpack(e.pack()).valid()
    assert not otadata.Entry().valid() and otadata.Entry().initial()


def test_set_boot_sequence_numbers():
    blank = [otadata.Entry(), otadata.Entry()]
    assert otadata.set_boot(blank, 1)[0] == 0 and otadata.set_boot(blank, 1)[1].seq == 2
    entries = [otadata.Entry(1, otadata.VALID), otadata.Entry()]
    index, e = otadata.set_boot(entries, 1)
    assert (index, e.seq, e.state) == (1, 2, otadata.NEW)
    entries = [otadata.Entry(3, otadata.VALID), otadata.Entry(2, otadata.VALID)]
    index, e = otadata.set_boot(entries, 1)
    assert (index, e.seq) == (1, 4)


# --- the bootloader on a flash file --------------------------------------------------

@pytest.fixture
def flash(tmp_path):
    f = Flash.create(tmp_path / "flash.bin")
    f.write("ota_0", appimage.build(b"app zero", "v0"))
    return f


def test_blank_otadata_boots_ota_0_and_records_it(flash):
    boot = bootloader.boot(flash)
    assert (boot.slot, boot.state, boot.exe) == ("ota_0", "valid", b"app zero")
    entries = otadata.read(flash.read("otadata"))
    assert entries[0].seq == 1 and entries[0].state == otadata.VALID


def test_new_image_boots_pending_verify_then_stays_when_marked_valid(flash):
    bootloader.boot(flash)
    flash.write("ota_1", appimage.build(b"app one", "v1"))
    bootloader.set_boot(flash, "ota_1")
    boot = bootloader.boot(flash)
    assert (boot.slot, boot.state) == ("ota_1", "pending_verify")
    bootloader.mark_valid(flash, "ota_1")
    boot = bootloader.boot(flash)
    assert (boot.slot, boot.state) == ("ota_1", "valid")


def test_reset_before_marked_valid_rolls_back(flash):
    bootloader.boot(flash)
    flash.write("ota_1", appimage.build(b"app one", "v1"))
    bootloader.set_boot(flash, "ota_1")
    assert bootloader.boot(flash).slot == "ota_1"  # pending verify; it resets unconfirmed
    boot = bootloader.boot(flash)
    assert (boot.slot, boot.state) == ("ota_0", "valid")
    assert any("aborted" in a for a in boot.actions)
    states = sorted(e.state for e in otadata.read(flash.read("otadata")))
    assert states == [otadata.VALID, otadata.ABORTED]
    assert bootloader.boot(flash).slot == "ota_0"  # and stays there


def test_invalid_image_in_the_chosen_slot_falls_back(flash):
    bootloader.boot(flash)
    flash.write("ota_1", b"\xe9 not an image")
    bootloader.set_boot(flash, "ota_1")
    boot = bootloader.boot(flash)
    assert boot.slot == "ota_0"
    assert "ota_1 not bootable" in boot.actions


def test_no_bootable_app(tmp_path):
    f = Flash.create(tmp_path / "flash.bin")
    with pytest.raises(EpxError, match="no bootable app"):
        bootloader.boot(f)
