# epx on a generic 4 MB ESP32: no BLE, size-optimised, two large OTA slots with rollback.
set(IDF_TARGET esp32)

# The partition table lives beside this file; sdkconfig files are copied verbatim,
# so its absolute path goes in through a generated fragment.
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.partitions
    "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions.csv\"\n")

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${CMAKE_CURRENT_LIST_DIR}/../EPX_ESP32/sdkconfig.board
    ${CMAKE_BINARY_DIR}/sdkconfig.partitions
)

# The app descriptor names profile and version (docker/build.sh sets it from git describe),
# so esptool image-info and the device's OTA check can tell what an image is.
if(DEFINED ENV{EPX_PROJECT_VER})
    set(PROJECT_VER $ENV{EPX_PROJECT_VER})
endif()
