"""The in-firmware unit tests of tests/firmware/appliances: drivers against their models,
appliance logic under faults. run_units() runs one of its t_* modules."""

import os

import pytest

from epx import build
from fwcode import assert_units_passed, run_code

RUNNER = "import sys;sys.path[:]=['.frozen'];import fwunit;fwunit.run(%r, 'appliances')"


@pytest.fixture(scope="session")
def appliances_firmware():
    exe, _ = build.build_unix("appliances")
    return exe


def run_units(exe, module, tmp_path):
    """Run one module of in-firmware unit tests; fail with its output unless all pass."""
    env = dict(os.environ, EPX_SIM_DIR=str(tmp_path))
    return assert_units_passed(run_code(exe, RUNNER % module, tmp_path, timeout=120, env=env))
