"""h2o unit tests inside the h2o host firmware (tests/h2o_fw/t_*.py, run from the
filesystem against the frozen product modules): drivers against their device models, the
viper pulse counter on a simulated GPIO, level, flow and display logic."""

from pathlib import Path

import pytest

from epx import build
from fwcode import assert_units_passed, run_code

HERE = Path(__file__).parent / "h2o_fw"
FWUNIT = Path(__file__).parent / "firmware"  # fwunit.py, the in-firmware runner
RUNNER = "import sys;sys.path[:]=['.frozen',%r,%r];import fwunit;fwunit.run(%r)"


@pytest.fixture(scope="session")
def h2o_firmware():
    exe, _ = build.build_unix("h2o")
    return exe


@pytest.mark.parametrize("module", sorted(p.stem for p in HERE.glob("t_*.py")))
def test_units(h2o_firmware, module, tmp_path):
    assert_units_passed(run_code(h2o_firmware, RUNNER % (str(HERE), str(FWUNIT), module), tmp_path,
                                 timeout=120))
