# The two commands of the README:
#   make run   — install, migrate, load the demo, start the API, the web UI and the scheduled flows
#   make test  — install and pass the whole test suite, on SQLite then on PostgreSQL
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# The demo lives on 15 June 2025: Pays de la Loire loans in repayment, Nouvelle-Aquitaine in full
# swing, Occitanie's pathway (2020–2022) complete (see README, "Demo clock").
DEMO_CLOCK ?= 2025-06-15T09:00:00+02:00
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install lock lint run test test-sqlite test-postgres system-packages a11y-packages postgres bench

# The exact tested set of requirements.lock, then Usine itself (editable) without resolving again.
$(BIN)/usine: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps -r requirements.lock -e .
	$(BIN)/pip check
	touch $(BIN)/usine

install: $(BIN)/usine

# Re-resolve pyproject.toml's ranges into requirements.lock, keeping every pin that still fits;
# `make lock LOCK_FLAGS="--upgrade-package babel"` (or "--upgrade") moves on. See docs/dependencies.md.
# Needs only uv (no install from the lock being replaced).
lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	$(BIN)/uv pip compile pyproject.toml --extra dev --python $(BIN)/python $(LOCK_FLAGS) -o requirements.lock

run: install
	USINE_CLOCK_START=$(DEMO_CLOCK) $(BIN)/usine db upgrade
	USINE_CLOCK_START=$(DEMO_CLOCK) $(BIN)/usine demo
	USINE_CLOCK_START=$(DEMO_CLOCK) $(BIN)/usine serve

# Debian's Chromium for the web UI tests (Playwright drives it; no browser download), and Node.js
# with npm for axe-core (the accessibility tests) when npm is missing.
system-packages:
	@if ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| { echo "could not install Debian's chromium"; exit 1; }; fi
	@if ! command -v npm >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null) \
		|| { echo "could not install Debian's nodejs and npm (the accessibility tests need them)"; exit 1; }; fi

# axe-core for the accessibility tests (tests/a11y_support.py), exactly as tests/a11y/package-lock.json
# pins it: `npm ci` into tests/a11y/node_modules (git-ignored), run again only when package.json or
# the lock is newer than what was installed (npm writes node_modules/.package-lock.json).
A11Y := tests/a11y
$(A11Y)/node_modules/.package-lock.json: $(A11Y)/package.json $(A11Y)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: the accessibility tests need Node.js and npm (make system-packages)"; exit 1; }
	cd $(A11Y) && npm ci --no-audit --no-fund
	touch $@

a11y-packages: $(A11Y)/node_modules/.package-lock.json

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL is not up"; exit 1

test-sqlite: install system-packages a11y-packages
	$(BIN)/pytest -n 2 --dist loadgroup

test-postgres: install system-packages a11y-packages postgres
	USINE_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -n 2 --dist loadgroup

# ruff (no reformatting: `ruff check` only), mypy on the pure domain (pyproject.toml), and the
# import contract of .importlinter: each layer imports only the layers below it.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# pytest exits 5 when it collected no test: like any non-zero code, make fails on it.
test: lint test-sqlite test-postgres

bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.sweep
