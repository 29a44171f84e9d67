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

## test: a small benchmark run, then every test and every notebook (nbval) under the local cloud
test: $(STAMP)
	$(BIN)/python -m labkit.bench --orders 200
	$(BIN)/pytest --nbval --nbval-sanitize-with notebooks/nbval_sanitize.cfg tests notebooks

## test-fast: the unit tests alone
test-fast: $(STAMP)
	$(BIN)/pytest tests

bench: $(STAMP)
	$(BIN)/python -m labkit.bench

lint: $(STAMP)
	$(BIN)/ruff check labkit lambda tests
	$(BIN)/ruff format --check labkit lambda tests

format: $(STAMP)
	$(BIN)/ruff format labkit lambda tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
