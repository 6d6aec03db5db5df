"""The simulator offers, and product code uses, only the API of MicroPython v1.25.0's ESP32
port, as read from the pinned C source (tests/portapi.py)."""
import re

import pytest

import portapi


@pytest.fixture(scope="module")
def api():
    return portapi.port_api()


def _documented(rst, cls):
    # The methods MicroPython's own docs (docs/library) give a class: an independent source.
    text = (portapi.MPY / "docs" / "library" / rst).read_text()
    return set(re.findall(r"\.\. (?:method|classmethod|staticmethod):: %s\.(\w+)\(" % cls, text))


@pytest.mark.parametrize("module, cls, rst", [
    ("esp32", "NVS", "esp32.rst"),
    ("esp32", "Partition", "esp32.rst"),
    ("machine", "WDT", "machine.WDT.rst"),
    ("network", "WLAN", "network.WLAN.rst"),
])
def test_the_reader_finds_what_the_docs_describe(api, module, cls, rst):
    methods = {n for n, v in api[module].attrs[cls].attrs.items() if isinstance(v, portapi.Function)}
    assert _documented(rst, cls) <= methods | {"__del__"}, _documented(rst, cls) - methods


def test_the_reader_resolves_the_esp32_configuration(api):
    # ESP32 (not S2/S3/C3) as sdkconfig and soc_caps say; the epx board has no Bluetooth.
    assert "raw_temperature" in api["esp32"].attrs and "mcu_temperature" not in api["esp32"].attrs
    assert "DAC" in api["machine"].attrs and "USBDevice" not in api["machine"].attrs
    assert "bluetooth" not in api and "ssl" not in api  # no micropython-lib bundle is frozen
    assert "VfsLfs2" in api["vfs"].attrs  # MICROPY_VFS_LFS2=1 from the port's CMake
    # keyword arguments, including those reached through helpers and protocols
    machine = api["machine"].attrs
    assert machine["Pin"].new.kwargs == {"mode", "pull", "value", "drive", "hold"}
    assert machine["Pin"].attrs["irq"].kwargs == {"handler", "trigger", "wake"}
    assert machine["SoftI2C"].attrs["init"].kwargs == {"scl", "sda", "freq", "timeout"}
    assert machine["I2C"].attrs["init"].kwargs == set()  # the hardware I2C has no init
    assert machine["Signal"].new.kwargs == {"invert"} | machine["Pin"].new.kwargs
    assert api["espnow"].attrs["ESPNow"].attrs["send"].kwargs == set()
    assert "EINPROGRESS" in api["errno"].attrs and "path" in api["sys"].attrs


@pytest.mark.parametrize("name", sorted(portapi.SIM_MODULES))
def test_a_simulated_module_offers_only_what_the_port_has(api, name):
    assert portapi.check_sim(name, (portapi.SIM / (name + ".py")).read_text(), api) == []


def test_product_code_uses_only_what_the_port_has(api):
    local = portapi.local_modules()
    problems = []
    for path in portapi.product_files():
        problems += portapi.check_source(path.read_text(), str(path.relative_to(portapi.ROOT)), api, local)
    assert problems == []


def test_a_name_the_port_lacks_fails_the_check(api):
    source = (portapi.SIM / "machine.py").read_text()
    assert portapi.check_sim("machine", source, api) == []
    broken = {
        "a function": source + "\n\ndef hard_reset():\n    pass\n",
        "a constant": source.replace("\nclass Pin:\n", "\nclass Pin:\n    IRQ_LOW_LEVEL = 4\n", 1),
        "a keyword": source + "\n\ndef reset_cause(*, hard=False):\n    pass\n",
        "a public attribute": source + "\n\nclass WDT:\n    def __init__(self, id=0, timeout=5000):\n"
                                        "        self.fed = 0\n\n    def feed(self):\n        pass\n",
    }
    for what, text in broken.items():
        assert text != source, what
        assert len(portapi.check_sim("machine", text, api)) == 1, what


def test_a_use_the_port_lacks_fails_the_check(api):
    source = """
import network
from machine import Pin
from esp32 import NVS

class Relay:
    def __init__(self, n):
        self.pin = Pin(n, Pin.OUT, value=0, hold=True)
        self.nvs = NVS("relay")

    def on(self):
        self.pin.on()
        self.nvs.set_i32("on", 1)
"""
    assert portapi.check_source(source, "ok", api) == []
    broken = {
        "a module name": ("import network", "import network\nnetwork.WLAN(network.STA_IF).connect('ap', 'pw')\nnetwork.STA_MODE"),
        "a class name": ("Pin.OUT, value", "Pin.OUT_PP, value"),
        "a keyword": ("hold=True)", "hold=True, hard=True)"),
        "a method": ('self.nvs.set_i32("on", 1)', 'self.nvs.set_u8("on", 1)'),
        "a module": ("from esp32 import NVS", "from esp32 import NVS\nimport ssl"),
    }
    for what, (old, new) in broken.items():
        assert len(portapi.check_source(source.replace(old, new), what, api)) == 1, what
