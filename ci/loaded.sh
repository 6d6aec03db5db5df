#!/usr/bin/env bash
# make test-loaded: the test command RUNS times in a row (3 by default) while a busy loop on
# every core keeps the host loaded: no result may depend on how busy the host is.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
burners=()
trap 'kill "${burners[@]}" 2>/dev/null || true' EXIT
for _ in $(seq "$(nproc)"); do
    (while :; do :; done) &
    burners+=($!)
done
for i in $(seq "$runs"); do
    echo "test-loaded: run $i of $runs, $(nproc) busy loops beside it"
    bash ci/test.sh "$@"
done
