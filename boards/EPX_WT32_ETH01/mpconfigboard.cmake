# WT32-ETH01: the EPX_ESP32 layout and settings, with a wired LAN8720 (see board.py).
include(${CMAKE_CURRENT_LIST_DIR}/../EPX_ESP32/mpconfigboard.cmake)
