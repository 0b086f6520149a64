# orderflow: every target sets up what it needs (a .venv with pinned dependencies) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install browser run test test-fast lint format build synth bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip==26.3' 'uv==0.13.8'
	@# uv installs the same pinned set as pip in a fraction of the time (15 s against 110 s here); pip if uv fails
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements/constraints.txt -e '.[local,cdk,dev]' \
	  || $(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[local,cdk,dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install pinned dependencies (only when missing or changed)

run: install ## start the local stack with sample data (API on http://127.0.0.1:3000, console on /console/)
	$(BIN)/orderflow local

# The console's browser tests drive Debian's chromium through Playwright (no browser download); CI runs as root.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "chromium is missing: run 'sudo apt-get install -y chromium' (the browser tests need it)"; exit 1; fi

browser: $(CHROMIUM) ## install Debian's chromium for the console's browser tests (as root), when missing

test: install build browser ## set up and run the whole test suite (two workers; each test file stays on one), then the browser tests beside the slow race
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "not slow" --ignore=tests/browser --durations=25
	@# then the browser tests and the slow race side by side, each on its own stack (the browser's output
	@# is shown after the race's)
	@log=$$(mktemp); $(BIN)/python -m pytest tests/browser > $$log 2>&1 & browser=$$!; \
	  $(BIN)/python -m pytest -m slow; race=$$?; wait $$browser; shown=$$?; cat $$log; rm -f $$log; \
	  test $$race -eq 0 -a $$shown -eq 0

test-fast: install ## unit tests only
	$(BIN)/python -m pytest tests/unit -q

lint: install ## ruff
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

build: install ## build the Lambda assets (.build/code and .build/layer) for CDK
	$(BIN)/python -m infra.build_assets

synth: build ## synthesize the CDK app offline into cdk.out, with cdk-nag checks
	CDK_OUTDIR=cdk.out $(BIN)/python app.py

bench: install ## benchmarks, each beside its baseline: end to end + cost, local stack, cold start, allocation + race, hot SKU, import (5,000 orders); the table
	$(BIN)/python -m benchmarks.local_stack
	$(BIN)/python -m benchmarks.end_to_end
	$(BIN)/python -m benchmarks.cold_start
	$(BIN)/python -m benchmarks.allocation --race 200:50
	$(BIN)/python -m benchmarks.hot_sku
	$(BIN)/python -m benchmarks.import_throughput --orders 5000
	$(BIN)/python -m benchmarks.report

clean:
	rm -rf .build cdk.out .pytest_cache .orderflow
