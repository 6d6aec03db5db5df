# Thin wrappers around the `epx` tool (tools/epx); `epx --help` has the rest.
PROFILE ?= h2o
BOARD ?= EPX_ESP32

.PHONY: setup fetch unix esp32 esp32-check sim test bench clean

setup:
	bash ci/setup.sh

fetch: setup
	epx fetch

unix: fetch
	epx unix $(PROFILE) --board $(BOARD)

esp32-check: fetch
	epx esp32-check $(PROFILE) --board $(BOARD)

esp32: fetch
	epx esp32 $(PROFILE) --board $(BOARD)

sim: fetch
	epx sim $(PROFILE)

test:
	bash ci/test.sh

bench: fetch
	python3 bench/run.py

clean:
	rm -rf build dist
