"""Pins from the board: every pin key takes its default from boards/<board>/board.py; the
firmware (at config parse, naming line, key and pin) and `epx esp32-check` refuse a pin the
chip or the board keeps (flash 6-11, the WT32-ETH01's Ethernet pads, 34-39 as outputs, a
boot strapping pin holding a relay); every profile boots on EPX_WT32_ETH01 on its wired
LAN, whose pads a profile touching them would cut."""

import pytest

from epx import build, pincheck
from epx.errors import EpxError
from epx.sim import appimage, worlds
from fwcode import last_json, run_code

WT32 = "EPX_WT32_ETH01"
ENTRY = "import sys;sys.path[:]=['.frozen'];import json\n"
PARSE = ENTRY + """
from epx import config, pins
SDA = pins.key("sda", pins.OUT)
RELAYS = pins.keys("relays", pins.HELD)
FLOW = pins.key("flowpin", pins.IN)
TX = pins.key("uarttx", pins.OUT)
config.load()
print(json.dumps({"errors": config.errors, "values": [SDA.value, RELAYS.value, FLOW.value,
                                                       TX.value]}))
"""


def parse(tmp_path, board, text):
    exe, _ = build.build_unix("coreunit", board=board)
    (tmp_path / "config.txt").write_text(text)
    return last_json(run_code(exe, PARSE, tmp_path))


def test_defaults_come_from_the_board(tmp_path):
    esp32 = parse(tmp_path, "EPX_ESP32", "")
    wt32 = parse(tmp_path, WT32, "")
    assert esp32 == {"errors": [], "values": [21, [25, 26, 27, 33], 14, 17]}
    assert wt32 == {"errors": [], "values": [33, [4, 14, 15, 17], 14, 17]}


def test_the_firmware_refuses_a_pin_the_board_keeps(tmp_path):
    text = "sda 21\nrelays 4,12\nflowpin 7\nuarttx 36\n"
    out = parse(tmp_path, WT32, text)
    assert out["errors"] == [
        "config.txt:1: sda: GPIO 21 is taken on EPX_WT32_ETH01 (Ethernet TX_EN)",
        "config.txt:2: relays: GPIO 12 is a strapping pin: a level held on it at reset "
        "changes how the chip boots",
        "config.txt:3: flowpin: GPIO 7 belongs to the SPI flash",
        "config.txt:4: uarttx: GPIO 36 is input only",
    ]
    # The same sda on the board without Ethernet is fine: the board made the difference.
    assert parse(tmp_path, "EPX_ESP32", "sda 21\n")["errors"] == []


@pytest.mark.parametrize("board", ["EPX_ESP32", WT32])
@pytest.mark.parametrize("profile", build.profiles())
def test_every_profile_has_valid_default_pins(profile, board):
    files = [f[0] for f in build.resolve(build.source.micropython_dir(),
                                         build.manifest_of(profile), "esp32")]
    assert pincheck.check(profile, board, files) == []


def test_esp32_check_refuses_a_pin_the_board_keeps(monkeypatch):
    example = {"relays": (8, "25,26")}
    monkeypatch.setattr(pincheck, "_example", lambda profile: (build.ROOT / "x.example", example))
    with pytest.raises(EpxError, match=r"x.example:8: relays: GPIO 25 is taken on "
                                       r"EPX_WT32_ETH01 \(Ethernet RXD0\)"):
        build.esp32_check("relay", WT32)
    build.esp32_check("relay", "EPX_ESP32")  # the same pins on the other board: fine


def wt32_app(profile, tmp_path):
    exe, _ = build.build_unix(profile, board=WT32)
    appimage.write(exe, build.firmware_version(profile), tmp_path / f"{profile}.bin")
    return (tmp_path / f"{profile}.bin").read_bytes()


def example(profile, broker, **keys):
    """The profile's config.txt.example on the test's broker, with keys replaced."""
    from epx.sim.run import default_config, with_broker, with_keys

    return with_keys(with_broker(default_config(profile), broker.host, broker.port), **keys)


# Networked profiles on the wired LAN (the Ethernet pads held by the EMAC), the scale
# manager on WiFi (ESP-NOW needs the radio); the battery sensor has no network.
WIRED = ["h2o", "relay", "energy", "weather", "bare"]


@pytest.mark.parametrize("profile", WIRED)
def test_every_profile_boots_on_the_wired_board(profile, tmp_path, device, broker, mqtt_watch):
    entry = worlds.world(profile)
    dev = device(wt32_app(profile, tmp_path), config=example(profile, broker, ssid="(wired)"),
                 start=False)
    worlds.attach(dev, entry)
    w = mqtt_watch(broker)
    dev.start()
    dev.advance(12000)  # the network starts 12 s after boot
    dev.wait_console(r"net: up", timeout=60)  # a whole appliance starting on a busy host
    name = worlds.config_value(example(profile, broker), "mqttname")
    w.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=60, device=dev)
    assert not [t for _, _, t in dev.console if " E " in t or "safe mode" in t]


def test_switch_drivers_do_not_fit_the_wired_board(tmp_path, device, broker):
    # Every switch driver is a PCB whose ESP32 uses Ethernet pads: refused, by name.
    dev = device(wt32_app("switch", tmp_path), config=example("switch", broker, driver="hoffer6"))
    dev.wait_console(r"config.txt:\d+: driver: hoffer6: GPIO 25 is taken on EPX_WT32_ETH01 "
                     r"\(Ethernet RXD0\)", timeout=60)
    dev.wait_console(r"safe mode", timeout=60)


def test_the_scale_pair_boots_on_the_wired_board(tmp_path, device, broker, mqtt_watch):
    # The manager on WiFi (ESP-NOW needs the radio), the battery sensor without network:
    # both read their pins from the board, neither hears the other (no shared medium).
    w = mqtt_watch(broker)
    manager = device(wt32_app("scale_manager", tmp_path), start=False, name="manager",
                     config=example("scale_manager", broker, ssid="epx-sim", password="None"))
    manager.start()
    manager.advance(12000)
    manager.wait_console("scale: ESP-NOW on channel 6", timeout=60)
    name = worlds.config_value(example("scale_manager", broker), "mqttname")
    w.wait_for(f"stat/{name}/LWT", lambda p: p == "Online", timeout=60, device=manager)
    sensor = device(wt32_app("scale", tmp_path), start=False, name="sensor",
                    config=example("scale", broker, retries=0))
    worlds.attach(sensor, worlds.world("scale"))
    sensor.start()
    sensor.wait_console(r"scale: #\d+ not acknowledged after 1 sends", timeout=60)
    for dev in (manager, sensor):
        assert not [t for _, _, t in dev.console if " E " in t or "safe mode" in t]


def test_ci_leaves_out_exactly_the_pair_no_driver_fits():
    import yaml

    b = {name: pincheck._load(build.BOARDS / name / "board.py", "board") for name in build.boards()}
    rules = {name: pincheck._load(pincheck.PINS_PY, "epx_pins", board=b[name]) for name in b}
    drivers = pincheck._load(build.ROOT / "profiles/switch/switch/boards.py", "switch_boards")

    def fits(driver, board):
        r = rules[board]
        return all(r.check(n, r.OUT if out else r.IN) is None
                   for n, out in drivers.gpios(drivers.BOARDS[driver]))

    assert all(fits(d, "EPX_ESP32") for d in drivers.BOARDS)
    assert not any(fits(d, WT32) for d in drivers.BOARDS)
    workflow = yaml.safe_load((build.ROOT / ".github/workflows/firmware.yml").read_text())
    assert workflow["jobs"]["esp32"]["strategy"]["matrix"]["exclude"] == [
        {"profile": "switch", "board": WT32}]
    assert "`switch` is not built for `EPX_WT32_ETH01`" in (build.ROOT / "README.md").read_text()
