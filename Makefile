# Thin wrappers around the `epx` tool (tools/epx); `epx --help` has the rest. Every target
# runs the project's Python tools from the venv that `make setup` (ci/setup.sh) keeps in .venv/.
PROFILE ?= h2o
BOARD ?= EPX_ESP32
VENV := .venv
PYTHON := $(VENV)/bin/python
EPX := $(VENV)/bin/epx

.PHONY: setup fetch unix esp32 esp32-check sim test test-loaded test-fleet test-determinism test-soak test-stock test-ha mutants bench clean

setup:
	bash ci/setup.sh

fetch: setup
	$(EPX) fetch

unix: fetch
	$(EPX) unix $(PROFILE) --board $(BOARD)

esp32-check: fetch
	$(EPX) esp32-check $(PROFILE) --board $(BOARD)

esp32: fetch
	$(EPX) esp32 $(PROFILE) --board $(BOARD)

sim: fetch
	$(EPX) sim $(PROFILE)

test:
	bash ci/test.sh

# `make test` three times in a row (RUNS=n) with a busy loop on every core beside it.
test-loaded:
	bash ci/loaded.sh

# 100 simulated devices on one mosquitto: broker restarts and an OTA rollout (slow; not in
# `make test`). -s shows the reconnection figures.
test-fleet:
	bash ci/test.sh -n 0 -s -m fleet

# One profile walked a device-hour twice, idle and beside BUSY busy processes: the same
# trace (tests/test_determinism.py; slow, not in `make test`).
BUSY ?= 8
test-determinism:
	BUSY=$(BUSY) bash ci/test.sh -n 0 -m determinism

# Every profile (or SOAK=<profile>) walked EPX_SOAK_DAYS device-days at full cadence
# (tests/test_soak.py).
EPX_SOAK_DAYS ?= 7
SOAK ?=
test-soak:
	EPX_SOAK_DAYS=$(EPX_SOAK_DAYS) bash ci/test.sh -k "test_full_cadence_soak $(if $(SOAK),and $(SOAK))"

# The README's two commands in a fresh clone with only the distribution's Python (slow).
test-stock:
	python3 ci/stock.py

test-ha:
	bash ci/ha.sh

# Every named mutant of tests/mutants/ (ONLY=name[,name...]; MUTANTS=file.toml for another
# set) applied in a scratch copy, its firmwares rebuilt and its tests run: fails when one
# survives. Slow (20 minutes for 51 mutants here): not part of `make test`.
ONLY ?=
MUTANTS ?=
mutants: fetch
	$(PYTHON) -m epx unix bare >/dev/null
	$(PYTHON) tests/mutants/run.py $(if $(ONLY),--only $(ONLY)) $(MUTANTS)

bench: fetch
	$(PYTHON) bench/run.py

clean:
	rm -rf build dist
