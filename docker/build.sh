#!/usr/bin/env bash
# Inside the ESP-IDF image: build one profile for one board. The host side
# (`epx esp32`) has already written build/esp32-<profile>-<board>/{manifest.py,version.txt}
# and checked the manifest; it packages dist/ afterwards.
set -euo pipefail
profile=$1
board=$2
epx=${EPX_DIR:-/epx}
build=$epx/build/esp32-$profile-$board

. "$IDF_PATH/export.sh" >/dev/null
EPX_PROJECT_VER=$(cat "$build/version.txt")
export EPX_PROJECT_VER
make -C "$MICROPY_DIR/ports/esp32" \
    BOARD_DIR="$epx/boards/$board" \
    BUILD="$build/idf" \
    FROZEN_MANIFEST="$build/manifest.py"
