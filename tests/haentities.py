"""What Home Assistant must show for each profile's entities: device class, unit and state
class. One declaration for the real Home Assistant (tests/test_homeassistant.py, make
test-ha) and for the discovery every profile sends in the suite (tests/test_soak.py)."""

# profile -> {entity: (device class, unit, state class)}, the entity as
# "<component>.<object id after the device's name>".
PROFILES = {
    "h2o": {
        "sensor.level": (None, "%", "measurement"),
        "sensor.volume": ("volume_storage", "L", "measurement"),
        "sensor.flow": ("volume_flow_rate", "L/min", "measurement"),
        "sensor.pumped_since_level_change": ("volume", "L", "total_increasing"),
        "binary_sensor.malfunction": ("problem", None, None),
    },
    "energy": {
        "sensor.voltage": ("voltage", "V", "measurement"),
        "sensor.power": ("power", "W", "measurement"),
        "sensor.total": ("energy", "Wh", "total_increasing"),
        "binary_sensor.malfunction": ("problem", None, None),
    },
    "weather": {
        "sensor.temperature": ("temperature", "°C", "measurement"),
        "sensor.humidity": ("humidity", "%", "measurement"),
        "sensor.pressure": ("atmospheric_pressure", "hPa", "measurement"),
    },
    "switch": {"switch.output_0": (None, None, None)},
    "relay": {"switch.channel_0": (None, None, None), "number.channel_0_on_time": (None, "s", None)},
    "scale_manager": {"sensor.weight": ("weight", "kg", "measurement")},
}
# Every device: its diagnostics and its Refresh button.
DEVICE = {
    "sensor.uptime": ("duration", "min", "total_increasing"),
    "sensor.free_heap": ("data_size", "B", "measurement"),
    "sensor.wifi_signal": ("signal_strength", "dBm", "measurement"),
    "binary_sensor.safe_mode": ("problem", None, None),
    "button.refresh": (None, None, None),
    "update.firmware_update": ("firmware", None, None),
}


def expected(profile, name):
    """Entity id -> (device class, unit, state class) of a `profile` device named `name`."""
    out = {}
    for entity, classes in {**PROFILES[profile], **DEVICE}.items():
        component, rest = entity.split(".")
        out[f"{component}.{name}_{rest}"] = classes
    return out


def discovered(configs, name):
    """Entity id -> (device class, unit, state class) of discovery configs (payload dicts)."""
    return {f"{topic.split('/')[1]}.{doc['object_id']}": (doc.get("device_class"), doc.get("unit_of_measurement"),
                                                          doc.get("state_class"))
            for topic, doc in configs.items() if doc and doc["object_id"].startswith(name + "_")}


# energy's Yesterday is a daily report, not a measurement: statistics come from Energy and
# Today.
NOT_MEASURED = ("Yesterday",)


def measured_without_state_class(configs):
    """Sensors with a unit and no state_class, by discovery topic
    (homeassistant/<component>/<name>/<id>/config)."""
    return sorted(t for t, doc in configs.items() if doc and t.split("/")[1] == "sensor"
                  and doc.get("unit_of_measurement") and "state_class" not in doc
                  and t.split("/")[3] not in NOT_MEASURED)
