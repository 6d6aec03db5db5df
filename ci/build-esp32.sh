#!/usr/bin/env bash
# One profile x board in ESP-IDF's Docker image (CI runners with Docker): dist/<profile>-<board>/
# with firmware.bin, micropython.bin and firmware.json. The host side runs from the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=$1
board=${2:-EPX_ESP32}
bash ci/setup.sh
.venv/bin/epx esp32 "$profile" --board "$board"
.venv/bin/esptool image-info "dist/$profile-$board/micropython.bin"
