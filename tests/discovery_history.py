"""What earlier firmwares announced to Home Assistant: each profile's discovery topics
(<component>/<uid>, under homeassistant/<component>/<mqttname>/<uid>/config) as the host
firmware built from that commit published them in its demo world (`epx sim`, recorded
once). Every one must still be announced, or cleared by a retire() line."""

ANNOUNCED = {
    "41c0f67": {
        "energy": [
            "sensor/A", "sensor/Energy", "sensor/PowerFactor", "sensor/V", "sensor/W",
        ],
        "h2o": [
            "sensor/CoarseLevelPct", "sensor/CoarseLevelVol", "sensor/EstimatedLevelVol",
            "sensor/Flow", "sensor/Malfunction", "sensor/PumpedAfterLevelChange",
        ],
        "relay": [
            "switch/0_State", "switch/1_State", "switch/2_State", "switch/3_State",
        ],
        "scale_manager": [
            "sensor/Battery", "sensor/LastSeen", "sensor/Weight",
        ],
        "switch": [
            "event/Manual0_Event", "event/Manual1_Event", "event/Manual2_Event",
            "event/Manual3_Event", "event/Manual4_Event", "event/Manual5_Event",
            "event/Manual6_Event", "event/Manual7_Event", "switch/0_State", "switch/1_State",
            "switch/2_State", "switch/3_State", "switch/4_State", "switch/5_State",
            "switch/6_State", "switch/7_State",
        ],
        "weather": [
            "sensor/Humidity", "sensor/Pressure", "sensor/Temperature",
        ],
    },
    "5be0623": {
        "energy": [
            "binary_sensor/Health_safe", "binary_sensor/Malfunction", "button/Refresh",
            "sensor/A", "sensor/Energy", "sensor/Health_heap", "sensor/Health_ip",
            "sensor/Health_mqttlost", "sensor/Health_netlost", "sensor/Health_reset",
            "sensor/Health_rssi", "sensor/Health_version", "sensor/PowerFactor", "sensor/Today",
            "sensor/Uptime", "sensor/V", "sensor/W", "sensor/Yesterday", "update/Update",
        ],
        "h2o": [
            "binary_sensor/Health_safe", "binary_sensor/Malfunction", "button/Refresh",
            "sensor/CoarseLevelPct", "sensor/CoarseLevelVol", "sensor/EstimatedLevelStr",
            "sensor/EstimatedLevelVol", "sensor/Flow", "sensor/Health_heap", "sensor/Health_ip",
            "sensor/Health_mqttlost", "sensor/Health_netlost", "sensor/Health_reset",
            "sensor/Health_rssi", "sensor/Health_version", "sensor/PumpedAfterLevelChange",
            "sensor/Uptime", "update/Update",
        ],
        "relay": [
            "binary_sensor/Health_safe", "button/Refresh", "number/0_OnTime", "number/1_OnTime",
            "number/2_OnTime", "number/3_OnTime", "sensor/Health_heap", "sensor/Health_ip",
            "sensor/Health_mqttlost", "sensor/Health_netlost", "sensor/Health_reset",
            "sensor/Health_rssi", "sensor/Health_version", "sensor/Uptime", "switch/0_State",
            "switch/1_State", "switch/2_State", "switch/3_State", "update/Update",
        ],
        "scale_manager": [
            "binary_sensor/Health_safe", "binary_sensor/Malfunction", "button/Refresh",
            "sensor/Battery", "sensor/Health_heap", "sensor/Health_ip",
            "sensor/Health_mqttlost", "sensor/Health_netlost", "sensor/Health_reset",
            "sensor/Health_rssi", "sensor/Health_version", "sensor/LastSeen", "sensor/Refused",
            "sensor/Uptime", "sensor/Weight", "update/Update",
        ],
        "switch": [
            "binary_sensor/Health_safe", "button/Refresh", "event/Manual0_Event",
            "event/Manual1_Event", "event/Manual2_Event", "event/Manual3_Event",
            "event/Manual4_Event", "event/Manual5_Event", "event/Manual6_Event",
            "event/Manual7_Event", "sensor/Health_heap", "sensor/Health_ip",
            "sensor/Health_mqttlost", "sensor/Health_netlost", "sensor/Health_reset",
            "sensor/Health_rssi", "sensor/Health_version", "sensor/ProgramCompilation",
            "sensor/Uptime", "switch/0_State", "switch/1_State", "switch/2_State",
            "switch/3_State", "switch/4_State", "switch/5_State", "switch/6_State",
            "switch/7_State", "update/Update",
        ],
        "weather": [
            "binary_sensor/Health_safe", "binary_sensor/Malfunction", "button/Refresh",
            "sensor/Health_heap", "sensor/Health_ip", "sensor/Health_mqttlost",
            "sensor/Health_netlost", "sensor/Health_reset", "sensor/Health_rssi",
            "sensor/Health_version", "sensor/Humidity", "sensor/Pressure", "sensor/Temperature",
            "sensor/Uptime", "update/Update",
        ],
    },
}
