# Thin wrappers around the `epx` tool (tools/epx); `epx --help` has the rest.
PROFILE ?= h2o
BOARD ?= EPX_ESP32
EPX ?= epx

.PHONY: setup fetch unix esp32 esp32-check sim test bench clean

setup:
	pip install -q -e '.[test]'

fetch:
	$(EPX) fetch

unix: fetch
	$(EPX) unix $(PROFILE)

esp32-check: fetch
	$(EPX) esp32-check $(PROFILE) --board $(BOARD)

esp32: fetch
	$(EPX) esp32 $(PROFILE) --board $(BOARD)

sim: unix
	$(EPX) sim $(PROFILE)

test: fetch
	python -m pytest -n 2 tests

bench: fetch
	python -m bench

clean:
	rm -rf build dist
