#!/usr/bin/env bash
# Installs what building and testing need on a Debian machine (idempotent, quiet when done).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in mosquitto:mosquitto mosquitto_sub:mosquitto-clients make:make gcc:gcc openssl:openssl strip:binutils; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool##*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# A system mosquitto service would hold port 1883; the tests start their own brokers.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi

python3 -c "import epx, esptool, littlefs, paho.mqtt, pytest, xdist, pytest_timeout, esp_idf_nvs_partition_gen, cryptography" 2>/dev/null \
    || python3 -m pip install -q -e '.[test]'
