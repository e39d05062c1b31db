# Assay: the two commands are `make run` and `make test`; everything they need is installed here.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format services chromium frontend static migrate bench stack clean mlflow-yardstick

# --- set-up (each step re-runs only when its inputs change) -------------------------------
.venv/.runtime: requirements.lock
	test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PIP) install -q --disable-pip-version-check -r requirements.lock
	touch $@

.venv/.dev: .venv/.runtime requirements-dev.lock sdk/pyproject.toml
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.lock
	$(PIP) install -q --disable-pip-version-check -e './sdk[system,fast,examples]'
	$(PIP) install -q --disable-pip-version-check -e ./sdk
	touch $@

# The real `mlflow` client, for tests/compat only: its own venv, because mlflow pins
# gunicorn<27 against requirements.lock. Re-built only when its lock changes.
.venv-mlflow/.installed: requirements-mlflow.lock
	test -x .venv-mlflow/bin/python || python3.11 -m venv .venv-mlflow
	.venv-mlflow/bin/pip install -q --disable-pip-version-check -r requirements-mlflow.lock
	touch $@

# The real neptune 1.x client, for the offline-folder importer's tests only: its own venv, because
# its swagger/jsonschema extras would change the format checks of the main venv's validators.
.venv-neptune/.installed: requirements-neptune.lock
	test -x .venv-neptune/bin/python || python3.11 -m venv .venv-neptune
	.venv-neptune/bin/pip install -q --disable-pip-version-check -r requirements-neptune.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

frontend/static/dist/.built: node_modules/.installed $(shell find frontend/assets -type f 2>/dev/null) build.mjs
	npm run --silent build
	touch $@

frontend: frontend/static/dist/.built

migrate: .venv/.runtime
	$(PY) manage.py migrate --noinput -v 0

# Static files with hashed names and gzip/brotli copies (config/settings.py, STORAGES), served
# by WhiteNoise with a year's Cache-Control; collected again only when a source changed.
static: .venv/.runtime frontend
	$(PY) manage.py collectstatic_if_changed -v 0

# --- the embedded default: SQLite, local artifacts, eager tasks, in-memory channel layer ---
# (--lifespan off: Django has no ASGI lifespan; without it uvicorn says so at every start.)
run: .venv/.runtime frontend static migrate
	@echo "Assay on http://$(HOST):$(PORT)/  (first admin: $(PY) manage.py createsuperuser)"
	ASSAY_PUBLIC_URL="$${ASSAY_PUBLIC_URL:-http://$(HOST):$(PORT)}" \
	  .venv/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --no-access-log --lifespan off

# --- the whole suite on the production components (PostgreSQL, Redis) ---------------------
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

services:
	scripts/ensure-services.sh

lint: .venv/.dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports --no-cache
	cd sdk && ../.venv/bin/mypy

test: .venv/.dev .venv-mlflow/.installed .venv-neptune/.installed frontend chromium services lint
	.venv/bin/pytest -n 2 --dist loadgroup

format: .venv/.dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

# --- the production topology on this machine (gunicorn, Celery workers, beat, an S3 server) --
stack: .venv/.dev frontend services
	$(PY) deploy/stack.py

bench: .venv/.dev frontend services
	$(PY) benchmarks/ingest.py

# MLflow's own REST tests against Assay (issue 18's yardstick; minutes, so not in `make test`):
# MLFLOW_SRC is a checkout of mlflow/mlflow (docs/mlflow.md, "Yardstick").
mlflow-yardstick: .venv/.dev .venv-mlflow/.installed services
	@test -n "$(MLFLOW_SRC)" || { echo "usage: make mlflow-yardstick MLFLOW_SRC=/path/to/mlflow  (git clone --depth 1 --branch v3.17.2 https://github.com/mlflow/mlflow)"; exit 2; }
	$(PY) scripts/mlflow_yardstick/run.py $(MLFLOW_SRC)

clean:
	rm -rf .venv .venv-mlflow .venv-neptune node_modules frontend/static/dist var
