# TrustGate developer commands. Each target installs what it needs first (Python venv from the
# pinned requirements, Node emulators from package-lock.json, the IaC scanner's own venv).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov (IaC scanner) lives apart: its dependency pins conflict with the app's (requirements-iac.txt).
IAC_VENV := .venv-iac
PORT ?= 7071

.PHONY: setup run demo test bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-client.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(IAC_VENV)/.installed: requirements-iac.txt
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
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

## The whole test suite (tests start their own emulators on free ports; checkov scans infra/).
test: setup $(IAC_VENV)/.installed
	$(PY) -m pytest

## Benchmarks (on demand; prints figures).
bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(IAC_VENV) node_modules .devhost .pytest_cache
