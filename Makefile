# Two commands for a newcomer: `make demo` and `make test`. Both install everything from uv.lock first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

# Offline by default: no telemetry, no progress bars in logs.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_EXTRA_LOGGERS ?= driftline
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: demo test test-fast bench-promotion install lock ui-prefect ui-mlflow clean help

help:
	@echo "make demo       install from uv.lock and train on the bundled real data"
	@echo "make test       install from uv.lock and run the whole test suite (what CI runs)"
	@echo "make test-fast  the suite without slow end-to-end tests"
	@echo "make bench-promotion   false-promotion rate and power of the promotion test"
	@echo "make ui-prefect / make ui-mlflow   open the UIs on local results"

$(CURDIR)/.uv/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.uv uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

lock: | $(UV)
	$(UV) lock

demo: install
	$(BIN)/driftline train --config configs/default.yaml --summary-json .driftline/demo-summary.json

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

bench-promotion: install
	$(BIN)/python -m benchmarks.promotion_power

ui-prefect: install
	$(BIN)/prefect server start --host 127.0.0.1

ui-mlflow: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.driftline/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf .driftline .pytest_cache
