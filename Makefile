# TrustGate developer commands. Each target installs what it needs first (Python venv from the
# pinned requirements, Node emulators from package-lock.json).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 7071

.PHONY: setup run demo test bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-client.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Start emulators + the app on http://localhost:$(PORT) until Ctrl-C.
run: setup
	PORT=$(PORT) $(PY) -m devhost run

## Start everything, run the device demo on real files, print what happened, stop.
demo: setup
	$(PY) -m devhost demo

## The whole test suite (tests start their own emulators on free ports).
test: setup
	$(PY) -m pytest

## Benchmarks (on demand; prints figures).
bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) node_modules .devhost .pytest_cache
