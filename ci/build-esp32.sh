#!/usr/bin/env bash
# One profile x board in ESP-IDF's Docker image (CI runners with Docker): dist/<profile>-<board>/.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=$1
board=${2:-EPX_ESP32}
python3 -m pip install -q -e .
epx esp32 "$profile" --board "$board"
esptool image-info "dist/$profile-$board/micropython.bin"
