#!/usr/bin/env bash
# The test command of the README: setup, pinned source, every test on the host target, all
# with the project's venv (.venv/) first on PATH, as `. .venv/bin/activate` would put it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
export VIRTUAL_ENV=$PWD/.venv
export PATH=$VIRTUAL_ENV/bin:$PATH
"$VIRTUAL_ENV/bin/python" -m epx fetch >/dev/null
# One full compile of the C core before the workers start: every other firmware the tests
# build is then seeded from it and only freezes its own modules.
"$VIRTUAL_ENV/bin/python" -m epx unix bare >/dev/null
exec "$VIRTUAL_ENV/bin/python" -m pytest -n 2 -q -p no:benchmark --durations=15 "$@" tests
