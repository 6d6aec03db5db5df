"""Scheduled pin IRQs in the simulated ESP32 (ports/unix/variant/simirq.c, machine.Pin.irq):
the 8-deep queue, the latency, the VM's pauses and edges latched with the flash cache off,
run inside the host firmware (tests/sim_irq_fw/t_irq.py)."""

from pathlib import Path

import pytest

from epx import build
from fwcode import assert_units_passed, run_code

HERE = Path(__file__).parent / "sim_irq_fw"
FWUNIT = Path(__file__).parent / "firmware"
RUNNER = "import sys;sys.path[:]=['.frozen',%r,%r];import fwunit;fwunit.run(%r)"


@pytest.fixture(scope="session")
def h2o_firmware():
    exe, _ = build.build_unix("h2o")
    return exe


def test_scheduled_irqs(h2o_firmware, tmp_path):
    (tmp_path / "flash.bin").write_bytes(b"\xff" * 0x400000)
    assert_units_passed(run_code(h2o_firmware, RUNNER % (str(HERE), str(FWUNIT), "t_irq"),
                                 tmp_path, timeout=120))
