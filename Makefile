# dupcheck: `make run` serves the demo, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv run test bench lint synth clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/python -m dupcheck demo

test: venv
	$(BIN)/python -m pytest

# Writes cdk.out/Dupcheck.template.json; bundles Lambda dependencies with pip (no Docker).
synth: venv
	$(BIN)/python -m infra.app

bench: venv
	$(BIN)/python scripts/bench/index_bench.py

lint: venv
	$(BIN)/ruff check lambdas infra scripts tests
	$(BIN)/mypy lambdas/dupcheck

clean:
	rm -rf $(VENV) data cdk.out .pytest_cache
