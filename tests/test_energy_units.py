"""Unit tests inside the host firmware (tests/firmware/appliances): the PZEM-004T driver
against its Modbus model, and the meter's hour windows under faults."""

import pytest

from appliance_units import appliances_firmware, run_units  # noqa: F401 (fixture)


@pytest.mark.parametrize("module", ["t_pzem", "t_meter"])
def test_units(appliances_firmware, module, tmp_path):
    assert run_units(appliances_firmware, module, tmp_path) > 0
