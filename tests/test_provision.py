"""Provisioning: littlefs with the ESP32 port's geometry, NVS from CSV, merged images."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from esptool.bin_image import ELFSection, ESP32FirmwareImage

from epx import partitions
from epx.errors import EpxError
from epx.sim import appimage, provision
from epx.sim.flash import Flash, parse_table, table

CONFIG = "unit L\nmaxflow 60\n"
NVS_CSV = """key,type,encoding,value
epx,namespace,,
boots,data,i32,5
name,data,string,pump house
key,data,hex2bin,0102ff
"""


def fake_bootloader():
    """A valid (if useless) ESP32 image standing in for ESP-IDF's bootloader.bin."""
    image = ESP32FirmwareImage()
    image.entrypoint = 0x40080400
    image.segments.append(ELFSection(b".dram0.data", 0x3FFF0000, b"\0" * 64, 0))
    return image.save(None)


def test_littlefs_round_trip():
    image = provision.lfs_image({"config.txt": CONFIG, "data/x.bin": b"\0\1"}, 0x20000)
    assert len(image) == 0x20000
    assert provision.lfs_files(image) == {"config.txt": CONFIG.encode(), "data/x.bin": b"\0\1"}


def test_littlefs_superblock_has_the_port_geometry():
    image = provision.lfs_image({"config.txt": CONFIG}, 0x20000)
    # The superblock inline struct: version, block_size, block_count, name_max, ...
    assert b"littlefs" in image[:4096]
    at = image.index(b"littlefs") + 8 + 4  # tag of the inline struct follows the name
    version, block_size, block_count, name_max = __import__("struct").unpack_from("<IIII", image, at)
    assert (version, block_size, block_count, name_max) == (0x00020001, 4096, 32, 255)


def test_not_littlefs():
    with pytest.raises(EpxError, match="not a littlefs"):
        provision.lfs_files(b"\xff" * 0x20000)


def test_nvs_csv_to_image_and_json(tmp_path):
    csv = tmp_path / "nvs.csv"
    csv.write_text(NVS_CSV)
    assert provision.nvs_values(csv) == {
        "epx": {"boots": ["i32", 5], "name": ["str", "pump house"], "key": ["blob", "AQL/"]}}
    image = provision.nvs_image(csv, 0x6000)
    assert len(image) == 0x6000 and b"pump house" in image and b"boots" in image


def test_nvs_csv_errors_name_the_line(tmp_path):
    csv = tmp_path / "nvs.csv"
    csv.write_text("key,type,encoding,value\nepx,namespace,,\nboots,data,i32,many\n")
    with pytest.raises(EpxError, match=r"nvs.csv:3: boots"):
        provision.nvs_values(csv)


def test_into_device_folder(tmp_path):
    csv = tmp_path / "nvs.csv"
    csv.write_text(NVS_CSV)
    flash = provision.into_device(tmp_path / "dev", {"config.txt": CONFIG}, csv)
    assert provision.lfs_files(flash.read("vfs"))["config.txt"] == CONFIG.encode()
    assert b"pump house" in flash.read("nvs")
    assert json.loads((tmp_path / "dev" / "nvs.json").read_text())["epx"]["boots"] == ["i32", 5]
    # Provisioning again replaces the filesystem and keeps the rest of the flash.
    flash.write("ota_0", appimage.build(b"exe", "v1"))
    provision.into_device(tmp_path / "dev", {"config.txt": "unit m3\n"})
    flash = Flash(tmp_path / "dev" / "flash.bin")
    assert provision.lfs_files(flash.read("vfs")) == {"config.txt": b"unit m3\n"}
    assert appimage.read(flash.read("ota_0"))[1] == b"exe"


def test_merged_image_round_trip(tmp_path):
    parts = table()
    app = appimage.build(b"the firmware", "h2o-1.0.0")
    out = tmp_path / "merged.bin"
    csv = tmp_path / "nvs.csv"
    csv.write_text(NVS_CSV)
    provision.merged(out, parts, app, {"config.txt": CONFIG}, fake_bootloader(), nvs_csv=csv)
    data = out.read_bytes()
    assert len(data) == partitions.FLASH_SIZE
    assert parse_table(data[0x8000:0x9000]) == parts
    vfs = partitions.find(parts, "vfs")
    assert provision.lfs_files(data[vfs.offset:vfs.offset + vfs.size])["config.txt"] == CONFIG.encode()
    ota_0 = partitions.find(parts, "ota_0")
    assert appimage.read(data[ota_0.offset:ota_0.offset + ota_0.size])[1] == b"the firmware"
    assert data[0x1000] == 0xE9
    nvs = partitions.find(parts, "nvs")
    assert b"pump house" in data[nvs.offset:nvs.offset + nvs.size]


# A config.txt the bare profile's firmware takes: its required keys, valid values.
GOOD = ("ssid home-net\npassword correct horse\nmqttbroker 192.168.1.2\nmqttport 1883\n"
        "mqttname kitchen\nwatchdog 1\n")


def epx(*argv):
    return subprocess.run([sys.executable, "-m", "epx", *map(str, argv)], capture_output=True,
                          text=True, timeout=600)


def test_cli_provision_real_device_files(tmp_path):
    config = tmp_path / "config.txt"
    config.write_text(GOOD)
    out = epx("provision", "bare", "--config", config, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    assert "write-flash 0x3e0000" in out.stdout
    image = (tmp_path / "out" / "vfs.bin").read_bytes()
    assert provision.lfs_files(image)["config.txt"] == GOOD.encode() + ap_password_line(out.stdout)


# (what is wrong, the file's text, the lines epx provision must print for it), each refused
# by the firmware's own parsers; the first two lines are the bare profile's.
BAD = {
    "typo'd key": (GOOD.replace("watchdog 1", "watchdgo 1"),
                   ["my-config.txt:6: watchdgo: unknown key (did you mean watchdog?)"]),
    "missing required key": (GOOD.replace("mqttname kitchen\n", ""),
                             ["my-config.txt: mqttname: missing (required): Device name "
                              "(e.g. mqttname kitchen)"]),
    "port out of range": (GOOD.replace("mqttport 1883", "mqttport 99999"),
                          ["my-config.txt:4: mqttport: 99999 is out of range 1..65535"]),
    "all three": ("ssid home-net\nmqtname kitchen\nmqttbroker 192.168.1.2\nmqttport 99999\n",
                  ["my-config.txt:2: mqtname: unknown key (did you mean mqttname?)",
                   "my-config.txt:4: mqttport: 99999 is out of range 1..65535",
                   "my-config.txt: mqttname: missing (required): Device name "
                   "(e.g. mqttname kitchen)"]),
}


@pytest.mark.parametrize("case", BAD)
def test_cli_provision_refuses_what_the_firmware_refuses(tmp_path, case, monkeypatch):
    """Checked by the bare profile's host firmware (epx.config's parsers and the keys its
    modules declare): each error on a line of its own with its line number (a missing key
    has none: the file is named), exit 1, no traceback, and nothing written: no image
    folder, and a simulated device's flash as it was."""
    text, lines = BAD[case]
    monkeypatch.chdir(tmp_path)
    Path("my-config.txt").write_text(text)
    out = epx("provision", "bare", "--config", "my-config.txt", "--out", "out")
    assert out.returncode == 1 and out.stdout == "", out
    assert out.stderr.splitlines() == [
        "epx: my-config.txt: refused by the bare firmware's parsers, nothing written:"] + [
        "  " + line for line in lines]
    assert not Path("out").exists()
    Path("dev").mkdir()
    Flash.create(Path("dev", "flash.bin"))
    before = Path("dev", "flash.bin").read_bytes()
    out = epx("provision", "bare", "--config", "my-config.txt", "--device", "dev")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out
    assert Path("dev", "flash.bin").read_bytes() == before
    assert sorted(p.name for p in Path("dev").iterdir()) == ["flash.bin"]


def test_cli_provision_checks_the_profile_own_keys(tmp_path):
    """A profile's keys are its firmware's: h2o needs its tank's, bare knows none of them."""
    config = tmp_path / "c.txt"
    config.write_text(GOOD + "unit L\ncapacity 1500\nlevelsensors 20,40,60\nflowpulserate 7.5\n")
    assert epx("provision", "h2o", "--config", config, "--out", tmp_path / "h2o").returncode == 0
    out = epx("provision", "bare", "--config", config, "--out", tmp_path / "bare")
    assert out.returncode == 1 and f"{config}:7: unit: unknown key" in out.stderr, out.stderr
    config.write_text(GOOD + "unit L\ncapacity lots\nlevelsensors 20,40,60\nflowpulserate 7.5\n")
    out = epx("provision", "h2o", "--config", config, "--out", tmp_path / "h2o-2")
    assert out.returncode == 1 and f"{config}:8: capacity: " in out.stderr, out.stderr


def test_cli_provision_config_needs_the_profile(tmp_path):
    config = tmp_path / "config.txt"
    config.write_text(GOOD)
    out = epx("provision", "--config", config, "--out", tmp_path / "out")
    assert out.returncode == 1 and "name the profile" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_cli_provision_bad_config_path(tmp_path):
    out = epx("provision", "bare", "--config", tmp_path / "nope", "--out", tmp_path / "out")
    assert out.returncode == 1 and "nope" in out.stderr and "Traceback" not in out.stderr


def test_cli_provision_simulated_device(tmp_path):
    (tmp_path / "dev").mkdir()
    Flash.create(tmp_path / "dev" / "flash.bin")
    config, csv = tmp_path / "config.txt", tmp_path / "nvs.csv"
    config.write_text(GOOD)
    csv.write_text(NVS_CSV)
    out = epx("provision", "bare", "--config", config, "--nvs", csv, "--device", tmp_path / "dev")
    assert out.returncode == 0, out.stderr
    flash = Flash(tmp_path / "dev" / "flash.bin")
    assert provision.lfs_files(flash.read("vfs")) == {
        "config.txt": GOOD.encode() + ap_password_line(out.stdout)}
    assert json.loads((tmp_path / "dev" / "nvs.json").read_text())["epx"]["name"] == ["str", "pump house"]


def ap_password_line(stdout):
    """The config line of the access point password `epx provision` printed."""
    m = re.search(r"access point password \(appassword\): (\S+)", stdout)
    assert m, stdout
    return b"appassword " + m.group(1).encode() + b"\n"


def test_cli_provision_unconfigured_device_gets_a_fresh_ap_password(tmp_path):
    """Without --config the device is unconfigured: config.txt holds only the generated
    access point password, which is printed; every run makes another (random) one, and it
    is a WPA2 passphrase the device's parser accepts (8-63 printable ASCII)."""
    seen = set()
    for n in range(2):
        out = subprocess.run([sys.executable, "-m", "epx", "provision", "--out", str(tmp_path / f"o{n}")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        line = ap_password_line(out.stdout)
        image = (tmp_path / f"o{n}" / "vfs.bin").read_bytes()
        assert provision.lfs_files(image)["config.txt"] == line
        password = line.split()[1].decode()
        assert 8 <= len(password) <= 63 and all(" " <= c <= "~" for c in password)
        seen.add(password)
    assert len(seen) == 2


def test_cli_provision_keeps_a_given_ap_password(tmp_path):
    config = tmp_path / "config.txt"
    config.write_text(GOOD + "appassword my-own-secret\n")
    out = epx("provision", "bare", "--config", config, "--out", tmp_path / "out")
    assert out.returncode == 0 and "appassword" not in out.stdout, out
    image = (tmp_path / "out" / "vfs.bin").read_bytes()
    assert provision.lfs_files(image)["config.txt"] == config.read_bytes()
