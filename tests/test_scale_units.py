"""Unit tests inside the host firmware: the HX711 viper bit-bang against its pin-level
model, weighing (median, calibration, malfunctions), the authenticated ESP-NOW messages
with their refusals and replay check, and the sensor's sequence numbers."""

from appliance_units import appliances_firmware, run_units  # noqa: F401 (fixture)


def test_units(appliances_firmware, tmp_path):
    from epx.sim.flash import Flash

    Flash.create(tmp_path / "flash.bin")  # the replay guard's NVS blob: sized by the partition
    assert run_units(appliances_firmware, "t_scale", tmp_path) >= 13
