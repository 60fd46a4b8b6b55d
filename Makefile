# Atelier. `make run` on a fresh machine needs only Python 3.12+; `make test` runs the suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The first Python that is 3.13 or 3.12, from PATH or from pyenv's folders.
PYTHON ?= $(shell for p in python3.13 python3.12 $$HOME/.pyenv/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.12*/bin/python3 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SOLANA_PORT ?= 8899
BASE_PORT ?= 8545
PYTEST_ARGS ?=
# The settings read these: PUBLIC_URL and the RPC URLs follow them unless set themselves.
export HOST PORT SOLANA_PORT BASE_PORT
# Local development runs with DEBUG on (the development SECRET_KEY, local chains); outside DEBUG the
# settings refuse to start without SECRET_KEY. DEBUG=false in the environment wins. Not `worker`:
# it may run in production, where DEBUG on would mean local chains (DEBUG=true make worker locally).
migrate demo run states typecheck: export DEBUG ?= true
# A webhook receiver on this machine (examples/agent.py --webhook-port) is reachable under `make run`;
# the settings honour ALLOW_PRIVATE_WEBHOOKS only with DEBUG on.
run: export ALLOW_PRIVATE_WEBHOOKS ?= true

.PHONY: help venv run worker scheduler test e2e lint format typecheck states migrate demo

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt clients/python/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or 3.13 is needed (Django 6); none found." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(BIN)/.installed ## Create .venv and install the pinned requirements

migrate: venv
	$(BIN)/python manage.py migrate --noinput

demo: migrate ## Load demo agents and services (idempotent)
	$(BIN)/python manage.py seed_demo

run: demo ## Start the app on SQLite with demo data, the local chains and a worker; print the URL (PORT, SOLANA_PORT, BASE_PORT)
	@$(BIN)/python manage.py requeue_stale_tasks --older-than 300
	@$(BIN)/python manage.py runlocal

worker: venv ## Run the background worker (webhooks, payouts, refunds, payment re-checks)
	$(BIN)/python manage.py requeue_stale_tasks --older-than 300
	$(BIN)/python manage.py db_worker --queue-name '*'

scheduler: venv ## Run the periodic jobs (requeue, prune, x402 expiry, escrow scan, reconcile); safe on several hosts
	$(BIN)/python manage.py scheduler

test: venv ## Run the suite (SQLite; DATABASE_URL=postgres://... for PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

e2e: venv ## Browser tests: Playwright with the machine's Chromium (apt-get install chromium); screenshots in artifacts/
	$(BIN)/pytest -m e2e tests/e2e $(PYTEST_ARGS)

lint: venv ## ruff check and format check, and the import layers (.importlinter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv ## mypy --strict with django-stubs over the project and its tests; the Python SDK on its own, as a user installs it
	$(BIN)/mypy .
	cd clients/python && $(abspath $(BIN))/mypy atelier_client

states: venv ## Write the order transition table and its state diagram to docs/states.md
	$(BIN)/python manage.py states

.PHONY: prod-sim
prod-sim: venv ## Two gunicorn servers, two workers and the scheduler on PostgreSQL, Redis, S3 (moto) and the devchains; 200 paid orders with kills (PRODSIM_ORDERS)
	$(BIN)/python bench/prod_sim.py

.PHONY: bench
bench: venv ## Benchmark under gunicorn + PostgreSQL + Redis with wrk; writes BENCHMARKS.md (BENCH_SCALE=0.01 for a quick run, BENCH_BASELINE=<commit> for before/after)
	$(BIN)/python bench/run.py
