#!/usr/bin/env bash
# One profile x board in ESP-IDF's Docker image (CI runners with Docker): dist/<profile>-<board>/
# with firmware.bin, micropython.bin and firmware.json. The host side runs from the venv, with
# only what it uses installed; $EPX_ESP_IDF_IMAGE names the image when it is already built.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=$1
board=${2:-EPX_ESP32}
bash ci/setup.sh esp32
.venv/bin/epx esp32 "$profile" --board "$board"
.venv/bin/esptool image-info "dist/$profile-$board/micropython.bin"
