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

.PHONY: docs demo test test-fast bench bench-quick bench-quality bench-promotion bench-drift lint serve deploy worker webhook install lock audit ui-prefect ui-mlflow clean help

help:
	@echo "make demo       install from uv.lock and train on the bundled real data"
	@echo "make test       install from uv.lock and run the whole test suite (what CI runs)"
	@echo "make test-fast  the suite without slow end-to-end tests"
	@echo "make lint       ruff (lint, import order, format) and mypy (strict on the pure pipeline modules)"
	@echo "make docs       regenerate docs/configuration.md and the README's measured figures (from latest.json)"
	@echo "make bench      the benchmark suite: every performance and quality target (~60 min: 3547 s on a fresh clone)"
	@echo "make bench-quick  the same suite at small sizes, two parts at a time (about 2 min; CI runs it)"
	@echo "make bench-quality  model quality on real series: challenger vs naive baselines and a LightGBM reference"
	@echo "make audit      known vulnerabilities in every locked package (pip-audit, PyPI's advisory data)"
	@echo "make serve / deploy / worker / webhook   the deployed loop on a local Prefect server"
	@echo "make ui-prefect / make ui-mlflow   open the UIs on local results"

$(CURDIR)/.uv/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.uv uv==$(UV_VERSION)

# Migrated, empty Prefect and MLflow databases (~12 s once): a new local store starts as a copy, so a first
# command's local Prefect API answers in ~3 s instead of ~9 s (driftline.app.db_templates). Then the bytecode of
# what Driftline imports, by running the demo's commands once (~55 s): with PYTHONDONTWRITEBYTECODE set (as on CI
# machines) every process otherwise recompiled its imports from source (a tiny `driftline train`: 55 s of CPU, 32 s
# compiling). Not every module of every package (`uv sync --compile-bytecode`): ~420 MB, mostly never imported.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	$(BIN)/python -m driftline.app.db_templates
	$(BIN)/python -m driftline.app.bytecode
	@touch $@

install: $(VENV)/.synced

lock: | $(UV)
	$(UV) lock

# Every package in uv.lock (dev group included) checked against PyPI's vulnerability data, without
# installing anything. --strict: a package that could not be looked up fails the audit instead of being
# skipped silently (behind a mirror that serves only the package index, every lookup fails: see README).
PIP_AUDIT_VERSION := 2.10.1
audit: | $(UV)
	@req=$$(mktemp) && $(UV) export --frozen --no-hashes --no-emit-project --all-groups --quiet -o $$req && \
	$(UV) tool run --from pip-audit==$(PIP_AUDIT_VERSION) pip-audit -r $$req --no-deps --disable-pip --strict \
		--vulnerability-service pypi --progress-spinner off; rc=$$?; rm -f $$req; exit $$rc

demo: install
	$(BIN)/driftline train --config configs/default.yaml --summary-json .driftline/demo-summary.json

# Three workers on two cores: integration tests also wait on servers, retries and leases, so one more worker
# than cores keeps both busy; a fourth one added more CPU than it filled (its own imports and Prefect server, and
# the contention): 1,701 CPU-s and 867 s with four, 1,504 CPU-s and 797 s with three, on the same machine and code
# (2026-12-08, `make test` wrapped in /proc/stat readings). One test file per worker at a time (module fixtures
# such as servers are started once per file).
PYTEST_WORKERS ?= 3

# The project's own modules compiled too (only what changed; ~1 s): with PYTHONDONTWRITEBYTECODE set, each of
# the suite's ~200 driftline/flow subprocesses otherwise recompiled them (~0.3 s of CPU each).
PROJECT_CODE := src flows tasks deployments benchmarks

# The suite and the quick benchmarks run several processes per core, each fitting with OpenMP threads
# (XGBoost, LightGBM, scikit-learn). OpenMP's default lets an idle thread spin at a barrier for a while,
# which on an oversubscribed machine burns the CPU the other processes wait for: the quick scale_out part
# took 38.9 s (36.5 s of CPU) beside two busy loops on this 2-core machine, 11.8 s with the passive
# policy (7.5 vs 8.6 s alone). Fits alone (make demo, make bench) keep OpenMP's default.
test test-fast bench-quick: export OMP_WAIT_POLICY ?= passive

# The suite and the benchmarks start hundreds of Python processes: each module they import is compiled once and
# kept (install compiles only what the demo imports; the dev tools, servers and drills import more), even where
# PYTHONDONTWRITEBYTECODE is set, which would compile it again in every process.
test test-fast bench bench-quick bench-quality bench-promotion bench-drift: export PYTHONDONTWRITEBYTECODE :=

test: install
	$(BIN)/python -m compileall -q -j 0 $(PROJECT_CODE) >/dev/null
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: install
	$(BIN)/python -m compileall -q -j 0 $(PROJECT_CODE) >/dev/null
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow"

# Read-only: `ruff check --fix . && ruff format .` applies what it asks for.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# docs/configuration.md from the config schema; the measured figures in README.md and docs/performance.md
# from benchmarks/results/latest.json (benchmarks/docs.py; a test fails when they disagree).
docs: install
	$(BIN)/python -m driftline.app.config_doc --write
	$(BIN)/python -m benchmarks.docs --write

bench: install
	$(BIN)/python -m benchmarks.run

# Small sizes: checks that every benchmark still runs; the targets are judged on `make bench`.
bench-quick: install
	$(BIN)/python -m benchmarks.run --quick --no-fail

# The quality part alone, full size (a few minutes): its targets and per-dataset table go into
# benchmarks/results/latest.json beside the other parts' results already there.
bench-quality: install
	$(BIN)/python -m benchmarks.run --only quality --update

bench-promotion: install
	$(BIN)/python -m benchmarks.promotion_power

bench-drift: install
	$(BIN)/python -m benchmarks.drift_detection

# The deployed loop on one machine: `make serve` (terminal 1), `make deploy`, `make worker` (terminal 2),
# optionally `DRIFTLINE_WEBHOOK_SECRET=... make webhook` (terminal 3). `make deploy` also creates the
# notification automations (deployments/automations.yaml); DRIFTLINE_NOTIFY_URL=https://... names the webhook.
PREFECT_LOCAL_API ?= http://127.0.0.1:4200/api
# Deployment concurrency leases on disk (PREFECT_HOME), so a server restart keeps the running flows' leases
# (in memory, Prefect's default, a restart loses them and a run renewing its lease afterwards is cancelled).
PREFECT_LEASE_STORAGE := prefect.server.concurrency.lease_storage.filesystem

serve: install
	PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=$(PREFECT_LEASE_STORAGE) $(BIN)/python -m deployments.server --host 127.0.0.1

deploy: install
	PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/prefect work-pool inspect driftline-local >/dev/null 2>&1 || \
		PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/prefect work-pool create driftline-local --type process
	PREFECT_API_URL=$(PREFECT_LOCAL_API) DRIFTLINE_PROJECT_DIR=$(CURDIR) $(BIN)/python -m deployments.deploy --all

worker: install
	PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/python -m deployments.worker --pool driftline-local

webhook: install
	PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/driftline webhook --host 127.0.0.1 --port 8787

ui-prefect: serve

# The store the runs wrote to, chosen as `driftline` chooses it (config.Settings.from_env): MLFLOW_TRACKING_URI
# when set, else mlflow.db in DRIFTLINE_HOME (default .driftline). A tracking server (http[s]://) serves its own
# UI: its address is printed instead.
ui-mlflow: install
	@home=$$(realpath -m "$${DRIFTLINE_HOME:-.driftline}"); uri="$${MLFLOW_TRACKING_URI:-sqlite:///$$home/mlflow.db}"; \
	case "$$uri" in \
		http://*|https://*) echo "MLflow UI: $$uri (a tracking server serves its own UI)";; \
		*) echo "MLflow UI on http://127.0.0.1:5000 for $$uri"; \
		   MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec $(BIN)/mlflow ui --backend-store-uri "$$uri" --host 127.0.0.1 --port 5000;; \
	esac

clean:
	rm -rf .driftline .pytest_cache
