#!/usr/bin/env bash
# Installs what building and testing need on a Debian or Ubuntu machine (idempotent, quiet
# when done): apt packages, then the project's Python tools (pyproject.toml) in the project
# virtual environment .venv/, made from python3 on PATH ($EPX_PYTHON overrides it). The
# distribution's Python stays untouched (PEP 668: it is externally managed).
# `setup.sh esp32`: only what `epx esp32` uses on the host (ci/build-esp32.sh): no broker,
# no 32-bit gcc, no browser.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-all}

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
python=${EPX_PYTHON:-python3}
venv=.venv

apt_install() {
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_apt=()
tools="make:make gcc:gcc strip:binutils git:git"
[ "$only" = esp32 ] || tools="mosquitto:mosquitto mosquitto_sub:mosquitto-clients $tools"
for tool in $tools; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool##*:}")
done
command -v "$python" >/dev/null 2>&1 || need_apt+=(python3)
# Debian and Ubuntu leave ensurepip (which venv needs) to the python3-venv package.
if [ ! -x "$venv/bin/python" ] && ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
    need_apt+=(python3-venv)
fi
# The host firmware is a 32-bit build, like the ESP32: gcc must link an -m32 program.
if [ "$only" != esp32 ]; then
    echo 'int main(void) { return 0; }' | gcc -m32 -x c -o /dev/null - >/dev/null 2>&1 || need_apt+=(gcc-multilib)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    apt_install "${need_apt[@]}"
fi
# The portal's browser test drives the distribution's chromium (Debian's; Ubuntu ships it
# as a snap, which containers often cannot run): without it that test is skipped.
if [ "$only" != esp32 ] && ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium chromium-driver || echo "setup: no chromium: the portal's browser test will be skipped" >&2
fi
# A system mosquitto service would hold port 1883; the tests start their own brokers.
if command -v systemctl >/dev/null 2>&1; then "${sudo[@]}" systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi

# A venv whose interpreter is gone (removed, or upgraded by the distribution) is made afresh.
if [ -e "$venv" ] && ! "$venv/bin/python" -c "" >/dev/null 2>&1; then
    rm -rf "$venv"
fi
if [ ! -e "$venv" ]; then
    if ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
        echo "ci/setup.sh: $(command -v "$python") has no ensurepip; install its venv package" \
             "(python3-venv, or python3.X-venv for the version) or set EPX_PYTHON" >&2
        exit 1
    fi
    "$python" -m venv "$venv"
fi

# Install again when pyproject.toml changed, or when `epx` is another checkout's.
here=$(pwd -P)
stamp="$venv/.epx-pyproject"
want="$here $(sha256sum pyproject.toml | cut -d' ' -f1)"
installed=$(cd / && "$here/$venv/bin/python" -c "import epx, os; print(os.path.realpath(epx.__file__))" 2>/dev/null || true)
if [ "$installed" != "$here/tools/epx/__init__.py" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    echo "$want" > "$stamp"
fi

# The portal's browser test runs axe-core (npm) in the page: a project-local copy in
# node_modules/, at the version package.json pins. Without npm that check is skipped.
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package.json -nt node_modules/axe-core/axe.min.js ]; then
    if command -v npm >/dev/null 2>&1; then
        npm install --no-audit --no-fund --silent >/dev/null && touch node_modules/axe-core/axe.min.js
    else
        echo "setup: no npm: the portal's accessibility check (axe-core) will be skipped" >&2
    fi
fi
