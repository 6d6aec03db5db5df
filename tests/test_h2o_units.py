"""h2o unit tests inside the h2o host firmware (tests/h2o_fw/t_*.py, run from the
filesystem against the frozen product modules): drivers against their device models, the
viper pulse counter on a simulated GPIO, level, flow and display logic."""

import re
import subprocess
from pathlib import Path

import pytest

from epx import build

HERE = Path(__file__).parent / "h2o_fw"
FWUNIT = Path(__file__).parent / "firmware"  # fwunit.py, the in-firmware runner
RUNNER = "import sys;sys.path[:]=['.frozen',%r,%r];import fwunit;fwunit.run(%r)"


@pytest.fixture(scope="session")
def h2o_firmware():
    exe, _ = build.build_unix("h2o")
    return exe


@pytest.mark.parametrize("module", sorted(p.stem for p in HERE.glob("t_*.py")))
def test_units(h2o_firmware, module, tmp_path):
    out = subprocess.run([str(h2o_firmware), "-c", RUNNER % (str(HERE), str(FWUNIT), module)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    summary = re.search(r"SUMMARY \S+ passed (\d+) failed (\d+)", text)
    assert out.returncode == 0 and summary, text
    assert summary.group(2) == "0", text
    assert int(summary.group(1)) > 0
