#define MICROPY_HW_BOARD_NAME "epx ESP32 (4 MB)"
#define MICROPY_HW_MCU_NAME "ESP32"

// No BLE: epx talks WiFi, Ethernet and ESP-NOW only.
#define MICROPY_PY_BLUETOOTH (0)
