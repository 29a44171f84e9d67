# Everything runs from a virtualenv in .venv, created on first use from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab lab-instructor demo test test-fast test-wheels test-portable test-course student bench bench-smoke lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## lab: the local cloud plus JupyterLab on your copies of the student edition (Ctrl-C stops both)
lab: $(STAMP)
	$(BIN)/labkit lab

## lab-instructor: the same on copies of the instructor edition, solutions included
lab-instructor: $(STAMP)
	$(BIN)/labkit lab --instructor

## student: make the student edition (student/) from the notebooks with nbgrader; commit it with them
student: $(STAMP)
	$(BIN)/labkit course student --student-edition

## demo: build the pipeline in-process, publish the sample order and a malformed one, report
demo: $(STAMP)
	$(BIN)/labkit demo

# Tests run in parallel (pytest-xdist), a file per worker at a time: a notebook's cells share one kernel and a
# test file's module-scoped fixtures (a JupyterLab, a local cloud) are built once. Three workers per core: most of
# a test's time is waiting (visibility timeouts, kernels, a browser), so the cores stay busy. WORKERS sets the
# number (0: one process).
WORKERS ?= $(shell $(PYTHON) -c "import os; print(3 * (os.cpu_count() or 1))")
PYTEST := $(BIN)/pytest --dist loadfile --no-loadscope-reorder --durations=10

## test: every test and every notebook (nbval) under the local cloud, but the wheel resolution (test-wheels)
test: $(STAMP)
	$(PYTEST) -n $(WORKERS) -m "not wheels and not course and not portable" --nbval --nbval-sanitize-with notebooks/nbval_sanitize.cfg tests notebooks

## test-fast: the unit tests alone: no notebooks, no browser, nothing marked slow
test-fast: $(STAMP)
	$(PYTEST) -n $(WORKERS) -m "not browser and not slow and not wheels and not course and not portable" tests

## test-wheels: pip resolves every dependency to wheels for Linux, macOS and Windows, Python 3.11-3.13 (needs PyPI)
test-wheels: $(STAMP)
	$(PYTEST) -n 0 -m wheels tests/test_wheels.py

## test-portable: the execution, lifetime, trigger and file-system tests on the portable path (macOS's, Windows'); CI runs it
test-portable: $(STAMP)
	$(PYTEST) -n $(WORKERS) -m portable tests

## test-course: nbgrader's whole cycle on every notebook (generate, autograde, feedback, export), minutes; CI runs it
test-course: $(STAMP)
	LABKIT_COURSE_NOTEBOOKS=all $(BIN)/pytest -n 0 --durations=5 -m course tests/test_course.py

## bench: the benchmark at full size (minutes); its figures are in the README
bench: $(STAMP)
	$(BIN)/python -m labkit.bench

## bench-smoke: the benchmark at 100 orders, so CI prints the figures of every change (tests/test_bench.py checks them)
bench-smoke: $(STAMP)
	$(BIN)/python -m labkit.bench --orders 100

## lint: ruff (lint and format) over the code and tests, mypy over labkit/ and lambda/ (settings in pyproject.toml),
## cfn-lint over the pipeline's template (offline: CloudFormation's and SAM's schemas ship with it)
lint: $(STAMP)
	$(BIN)/ruff check labkit lambda tests
	$(BIN)/ruff format --check labkit lambda tests
	$(BIN)/mypy
	$(BIN)/cfn-lint infra/template.yaml

format: $(STAMP)
	$(BIN)/ruff format labkit lambda tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
