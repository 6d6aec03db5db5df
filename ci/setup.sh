#!/usr/bin/env bash
# Installs what building and testing need on a Debian machine (idempotent, quiet when done).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in mosquitto:mosquitto mosquitto_sub:mosquitto-clients make:make gcc:gcc strip:binutils; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool##*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# A system mosquitto service would hold port 1883; the tests start their own brokers.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi

# The `epx` command and package must be this checkout's, not another clone's.
here=$(pwd -P)
installed=$(cd / && python3 -c "import epx, os; print(os.path.realpath(epx.__file__))" 2>/dev/null || true)
if [ "$installed" != "$here/tools/epx/__init__.py" ] \
   || ! python3 -c "import esptool, littlefs, paho.mqtt, pytest, xdist, pytest_timeout, esp_idf_nvs_partition_gen, cryptography, crcmod" 2>/dev/null; then
    python3 -m pip install -q -e '.[test]'
fi
