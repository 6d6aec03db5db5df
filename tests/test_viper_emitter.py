"""Every `@micropython.viper` function of the product is compiled by the viper emitter:
read from the .mpy that mpy-cross makes (for the host's x64 and the ESP32's xtensawin)
and from the bytecode frozen into a built firmware, by MicroPython's own mpy-tool."""

from pathlib import Path

import pytest

from epx import build
from mpykit import code_kinds, compile_mpy, decorated

ROOT = Path(__file__).resolve().parents[1]
VIPER = "MP_CODE_NATIVE_VIPER"


def viper_sources():
    sources = {}
    for path in sorted((ROOT / "modules").rglob("*.py")) + sorted((ROOT / "profiles").rglob("*.py")):
        names = decorated(path)
        if names:
            sources[path] = names
    return sources


def not_viper(mpy, source, names):
    kinds = code_kinds(mpy, source)
    return {name: kinds.get(name, "missing") for name in names if kinds.get(name) != VIPER}


def test_the_product_has_viper_code_where_it_is_expected():
    names = {p.relative_to(ROOT).as_posix() for p in viper_sources()}
    # The hot paths the profiles rely on (pulse counting, bit-banging) are among them.
    assert {"modules/epx/pulse.py", "modules/third/shiftreg.py", "modules/third/hx711.py"} <= names


@pytest.mark.parametrize("march", ["x64", "xtensawin"])
def test_every_viper_function_compiles_to_viper_code(march, tmp_path):
    for path, names in viper_sources().items():
        mpy = compile_mpy(path, tmp_path / (path.stem + ".mpy"), march)
        assert not_viper(mpy, path, names) == {}, f"{path.relative_to(ROOT)} ({march})"


def test_a_function_without_the_decorator_is_caught(tmp_path):
    src = ROOT / "modules" / "third" / "shiftreg.py"
    names = decorated(src)
    plain = tmp_path / "shiftreg.py"
    plain.write_text(src.read_text().replace("@micropython.viper\n", "", 1))
    missing = not_viper(compile_mpy(plain, tmp_path / "plain.mpy", "x64"), plain, names)
    assert list(missing.values()) == ["MP_CODE_BYTECODE"]


def test_the_frozen_firmware_carries_the_viper_code():
    build.build_unix("switch")
    frozen = build.unix_build_dir("switch") / "frozen_mpy" / "shiftreg.mpy"
    src = ROOT / "modules" / "third" / "shiftreg.py"
    names = decorated(src)
    assert names and not_viper(frozen, src, names) == {}
