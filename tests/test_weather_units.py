"""Unit tests inside the host firmware: HDC1080 and BME280 drivers against their
register-level models (the BME280 against the datasheet's example), and the station's
malfunction bitmap and withdrawn values."""

from appliance_units import appliances_firmware, run_units  # noqa: F401 (fixture)


def test_units(appliances_firmware, tmp_path):
    assert run_units(appliances_firmware, "t_weather", tmp_path) >= 14
