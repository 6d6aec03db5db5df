#!/usr/bin/env bash
# The test command of the README: setup, pinned source, every test on the host target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
python3 -m epx fetch >/dev/null
# One full compile of the C core before the workers start: every other firmware the tests
# build is then seeded from it and only freezes its own modules.
python3 -m epx unix bare >/dev/null
exec python3 -m pytest -n 2 -q -p no:benchmark --durations=15 "$@" tests
