"""The host firmware is configured like the ESP32 port: a 32-bit build whose settings are
copied from the pinned ports/esp32/mpconfigport.h (tools/epx/portconfig.py), every other
setting of the port explained, and a core built otherwise rebuilt from scratch."""

import shutil
import struct

import pytest

from epx import build, portconfig, source
from epx.errors import EpxError
from epx.paths import BOARDS, ROOT
from fwcode import last_json, run_code

ENTRY = "import sys;sys.path[:]=['.frozen'];"


@pytest.fixture(scope="module")
def tree():
    return source.micropython_dir()


@pytest.fixture(scope="module")
def port(tree):
    return portconfig.esp32_settings(tree, BOARDS / "EPX_ESP32")


@pytest.fixture(scope="module")
def firmware():
    return build.build_unix("bare")[0]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_port_settings_are_read_from_the_pinned_source(port):
    # As ports/esp32/mpconfigport.h reads for an ESP32 (the board has no BLE).
    assert port["MICROPY_FLOAT_IMPL"] == "(MICROPY_FLOAT_IMPL_FLOAT)"
    assert port["MICROPY_LONGINT_IMPL"] == "(MICROPY_LONGINT_IMPL_MPZ)"
    assert port["MICROPY_SCHEDULER_DEPTH"] == "(8)"
    assert port["MICROPY_GC_INITIAL_HEAP_SIZE"] == "(56 * 1024)"  # the ESP32's, not the S2's
    assert port["MICROPY_PY_BLUETOOTH"] == "(0)"


def test_firmware_computes_in_single_precision_on_32_bits(firmware, tmp_path):
    code = ("import json, struct\nx = 0.0\nfor _ in range(1000):\n    x += 0.1\n"
            "print(json.dumps([sys.maxsize, struct.pack('<f', x).hex(), 1 + 2 ** -24 == 1, 3 ** 50, "
            "sys.platform]))")
    maxsize, total, tiny_lost, big, platform = last_json(run_code(firmware, ENTRY + code, tmp_path))
    expected = 0.0
    for _ in range(1000):
        expected = f32(expected + f32(0.1))  # float32 arithmetic, in CPython
    assert total == struct.pack("<f", expected).hex()
    # A double accumulation rounds differently: the check can tell the two apart.
    assert total != struct.pack("<f", sum([0.1] * 1000)).hex()
    assert tiny_lost is True and maxsize == 2 ** 31 - 1
    assert big == 3 ** 50 and platform == "esp32"


def test_scheduler_queue_holds_what_the_port_holds(firmware, port, tmp_path):
    # Callbacks scheduled from a running callback wait in the queue until it returns.
    code = ("import json, micropython\nn = []\n"
            "def fill(_):\n"
            "    for i in range(32):\n"
            "        try:\n            micropython.schedule(id, i)\n"
            "        except RuntimeError:\n            break\n"
            "    n.append(i)\n"
            "micropython.schedule(fill, 0)\nwhile not n:\n    pass\nprint(json.dumps(n))")
    assert last_json(run_code(firmware, ENTRY + code, tmp_path)) == [int(port["MICROPY_SCHEDULER_DEPTH"].strip("()"))]


def test_generated_header_reaches_the_build(firmware, tree):
    built = (build.unix_build_dir("bare") / portconfig.HEADER).read_text()
    assert built == portconfig.header(tree, BOARDS / "EPX_ESP32")
    assert "#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_FLOAT)" in built
    assert "MICROPY_GC_SPLIT_HEAP" not in built  # explained in HOST_DIFFERS instead


def test_every_port_setting_is_copied_or_explained(tree, port, monkeypatch):
    for board in ("EPX_ESP32", "EPX_WT32_ETH01"):
        taken, differing = portconfig.host_settings(tree, BOARDS / board)
        assert set(taken) | set(differing) == set(port)
    # A setting the port gains that needs the IDF stops the build until it is classified...
    gained = dict(port, MICROPY_PY_NEW_HOOK="(esp_new_hook())")
    monkeypatch.setattr(portconfig, "esp32_settings", lambda *a: gained)
    with pytest.raises(EpxError, match="MICROPY_PY_NEW_HOOK = '\\(esp_new_hook\\(\\)\\)' is neither copied"):
        portconfig.host_settings(tree, BOARDS / "EPX_ESP32")
    # ...and an explanation of a setting the port dropped is stale.
    lost = {k: v for k, v in port.items() if k != "MICROPY_NLR_SETJMP"}
    monkeypatch.setattr(portconfig, "esp32_settings", lambda *a: lost)
    with pytest.raises(EpxError, match="HOST_DIFFERS names MICROPY_NLR_SETJMP"):
        portconfig.host_settings(tree, BOARDS / "EPX_ESP32")


def compiled_core(build_dir):
    return "CC ../../py/vm.c" in (build_dir / "make.log").read_text()


@pytest.mark.timeout(1200)  # a full compile of the core: minutes on a busy host
def test_a_core_built_otherwise_starts_over(firmware, tmp_path, monkeypatch):
    manifest = tmp_path / "coreprobe.py"
    manifest.write_text("# nothing beyond the platform\n")
    build_dir = build.unix_build_dir(str(manifest))
    shutil.rmtree(build_dir, ignore_errors=True)
    try:
        # Built with other make settings: not seeded from the other profiles' objects.
        monkeypatch.setattr(build, "core_config", lambda: "MICROPY_FORCE_32BIT = 0\n")
        build.build_unix(str(manifest))
        assert compiled_core(build_dir)
        marker = build_dir / "py" / "marker"
        marker.write_text("an object of the other settings")
        # Back to this checkout's settings: every object goes (the folder starts again
        # from a sibling's objects of these settings).
        monkeypatch.undo()
        exe, _ = build.build_unix(str(manifest))
        assert not marker.exists()
        assert last_json(run_code(exe, ENTRY + "import json; print(json.dumps(sys.maxsize))", tmp_path)) == 2 ** 31 - 1
        # Same settings: the objects are kept.
        build.build_unix(str(manifest))
        assert not compiled_core(build_dir)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def test_every_difference_is_documented():
    doc = (ROOT / "docs" / "port-parity.md").read_text()
    section = doc[doc.index("## Build configuration"):].split("\n## ")[0]
    missing = [p for p in portconfig.HOST_DIFFERS if f"`{p}`" not in section]
    assert not missing, f"docs/port-parity.md does not explain {missing}"
