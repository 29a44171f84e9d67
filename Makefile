# Everything runs from a virtualenv in .venv, created on first use from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab demo test test-fast bench lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## lab: the local cloud plus JupyterLab on the notebooks (Ctrl-C stops both)
lab: $(STAMP)
	$(BIN)/labkit lab

## demo: build the pipeline in-process, publish the sample order and a malformed one, report
demo: $(STAMP)
	$(BIN)/labkit demo

# Tests run in parallel (pytest-xdist). tests/conftest.py keeps on one worker the tests of a file whose fixtures
# are built once per module (a JupyterLab, a local cloud); a notebook's cells share one kernel, so notebooks go
# to workers whole (loadfile). WORKERS=0 runs everything in one process.
WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(WORKERS) --durations=10

## test: a small benchmark run, then every test, then every notebook (nbval) under the local cloud
test: $(STAMP)
	$(BIN)/python -m labkit.bench --orders 100
	$(PYTEST) --dist loadgroup tests
	$(PYTEST) --dist loadfile --nbval --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

## test-fast: the unit tests alone: no notebooks, no browser, nothing marked slow
test-fast: $(STAMP)
	$(PYTEST) --dist loadgroup -m "not browser and not slow" tests

bench: $(STAMP)
	$(BIN)/python -m labkit.bench

## lint: ruff (lint and format) over the code and tests, mypy over labkit/ and lambda/ (settings in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check labkit lambda tests
	$(BIN)/ruff format --check labkit lambda tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format labkit lambda tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
