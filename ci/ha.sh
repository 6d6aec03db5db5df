#!/usr/bin/env bash
# make test-ha: every profile in a real Home Assistant Core. Home Assistant (pinned below)
# lives in its own venv, .venv-ha/, made from Python 3.13 (what 2025.4 requires): python3.13
# on PATH, a pyenv 3.13, or $EPX_HA_BASE_PYTHON. $EPX_HA_VENV names a venv that already
# holds the pinned Home Assistant, used as it is instead.
set -euo pipefail
cd "$(dirname "$0")/.."
HA_VERSION=2025.4.4

has_pinned() {
    [ -x "$1/bin/python" ] && "$1/bin/python" -c "import homeassistant.const as c; assert c.__version__ == '$HA_VERSION'" 2>/dev/null
}

bash ci/setup.sh
if [ -n "${EPX_HA_VENV:-}" ]; then
    venv=$(cd "$EPX_HA_VENV" 2>/dev/null && pwd) || venv=$EPX_HA_VENV
    if ! has_pinned "$venv"; then
        echo "make test-ha: EPX_HA_VENV=$EPX_HA_VENV holds no Home Assistant $HA_VERSION" >&2
        exit 2
    fi
else
    venv=$PWD/.venv-ha
fi
if ! has_pinned "$venv"; then
    base=${EPX_HA_BASE_PYTHON:-}
    if [ -z "$base" ]; then
        for candidate in python3.13 $(pyenv root 2>/dev/null | sed 's|$|/versions/3.13*/bin/python3|'); do
            for found in $candidate; do
                if command -v "$found" >/dev/null 2>&1 && "$found" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
                    base=$found
                    break 2
                fi
            done
        done
    fi
    if [ -z "$base" ]; then
        echo "make test-ha: Home Assistant $HA_VERSION needs Python 3.13 and none was found" >&2
        echo "(install python3.13, a pyenv 3.13, or set EPX_HA_BASE_PYTHON to one)" >&2
        exit 2
    fi
    rm -rf "$venv"
    "$base" -m venv "$venv"
    # As Home Assistant's own installs: its wheel's package_constraints.txt pins the rest.
    wheels=$(mktemp -d)
    "$venv/bin/python" -m pip download -q --no-deps -d "$wheels" "homeassistant==$HA_VERSION"
    "$venv/bin/python" - "$wheels" <<'PY'
import pathlib, sys, zipfile
folder = pathlib.Path(sys.argv[1])
wheel = next(folder.glob("homeassistant-*.whl"))
(folder / "constraints.txt").write_bytes(
    zipfile.ZipFile(wheel).read("homeassistant/package_constraints.txt"))
PY
    "$venv/bin/python" -m pip install -q "homeassistant==$HA_VERSION" -c "$wheels/constraints.txt"
    rm -rf "$wheels"
fi
export VIRTUAL_ENV=$PWD/.venv
export PATH=$VIRTUAL_ENV/bin:$PATH
python -m epx fetch >/dev/null
python -m epx unix bare >/dev/null
# The upgrades build 5be0623's and 41c0f67's firmware from git history (a full clone).
EPX_HA_PYTHON=$venv/bin/python exec python -m pytest -q -p no:benchmark "$@" \
    tests/test_homeassistant.py tests/test_homeassistant_upgrade.py
