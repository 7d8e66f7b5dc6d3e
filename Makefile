# dupcheck: `make run` serves the demo, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# uv installs every package at the version uv.lock pins; this pins uv itself.
UV_VERSION := 0.13.9
UV := $(BIN)/python -m uv
# jsii (the CDK's bridge to Node) calls Node 20 past its end of life; synth and the tests run on it
# (docs/deploy.md asks for 20+, a test keeps the two the same): its warning is silenced.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv model browser run test bench lint lock openapi screenshots results synth clean

# The web app's tests drive Debian's headless Chromium and its chromedriver: installed with apt
# when missing (CI runs as root; elsewhere through sudo).
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): uv.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "uv==$(UV_VERSION)"
	# --frozen: exactly the lock, never a new resolution; --inexact: keep pip and uv themselves.
	$(UV) sync --quiet --frozen --inexact --extra products --python $(BIN)/python
	touch $(STAMP)

# The checkout on the venv's path: scripts/ (and infra/) import as packages, however a script is run.
venv: $(STAMP)
	@$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'dupcheck-checkout.pth').write_text('$(CURDIR)\n')"

# The similar-products model, converted from the weights package the venv installed (no torch, no
# download; docs/lab/similar-products.md). Its name is core/models.py's PRODUCT_MODEL (a test checks).
MODEL := lambdas/dupcheck/models/effnetlite1-rp256-i8-v1.onnx
$(MODEL): $(STAMP) lambdas/dupcheck_tools/product_model.py
	$(BIN)/python -m dupcheck_tools.product_model --out $(MODEL)

model: $(MODEL)

$(CHROMEDRIVER):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver

browser: $(CHROMEDRIVER)

# The demo's catalog goes to demo-data/, a store of its own: ./data (what serve, add and backfill
# use) stays the shop's.
run: venv $(MODEL)
	$(BIN)/python -m dupcheck demo

# Then the matching engine's tests, and those of what it reads, once more under the narrowest
# numpy and OpenBLAS kernels this machine has: a verdict must not depend on the CPU's SIMD kernels
# (scripts/same_answers.py).
test: venv $(MODEL) browser lint
	$(BIN)/python -m pytest
	env $$($(BIN)/python scripts/same_answers.py env) $(BIN)/python -m pytest -q tests/unit/matching tests/unit/stored tests/unit/limits tests/unit/pictures/test_arrays.py \
		tests/unit/fingerprint/test_hashing.py

# Writes cdk.out/Dupcheck.template.json; builds the Lambda bundles with uv (no Docker). Context as
# `cdk -c` takes it, space-separated: make synth CONTEXT="dupcheck:profile=dev dupcheck:alarmEmail=a@b.c"
CONTEXT ?=
synth: venv
	$(BIN)/python -m infra.app $(addprefix -c ,$(CONTEXT))

bench: venv
	$(BIN)/python scripts/bench/index_bench.py

# Linters first: a formatting slip fails in seconds, before the suite's minutes.
lint: venv
	$(BIN)/ruff check lambdas infra scripts tests
	$(BIN)/ruff format --check lambdas infra scripts tests
	$(BIN)/mypy lambdas/dupcheck lambdas/dupcheck_tools
	$(BIN)/lint-imports --no-cache

# After changing dependencies in pyproject.toml: re-resolve uv.lock and export requirements.txt.
lock: venv
	$(BIN)/python scripts/lock.py

# After changing routes or response models: regenerate the committed contract.
openapi: venv
	$(BIN)/python scripts/openapi.py

# docs/results.md (and evaluation.md's, deploy.md's generated blocks) from the runs recorded in
# docs/results/ (scripts/results.py --record NAME --from FILE).
results: venv
	$(BIN)/python scripts/results.py

# After changing the web app's look: retake docs/img/web-*.png (then look at them).
screenshots: venv $(MODEL) browser
	$(BIN)/python -m scripts.screenshots

clean:
	rm -rf $(VENV) data demo-data cdk.out .pytest_cache .import_linter_cache $(MODEL)
