# The two commands of the README: `make up` and `make test`.
SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: up test setup setup-test lint typecheck pytest bench clean

up: setup
	$(VENV)/spacehub up

test: setup-test lint typecheck pytest

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

lint:
	$(VENV)/ruff check platform tests bench
	$(VENV)/ruff format --check platform tests bench
	$(VENV)/lint-imports

typecheck:
	$(VENV)/mypy

# The whole suite on SQLite (the embedded default), then what touches the database on PostgreSQL.
pytest:
	$(VENV)/pytest $(PYTEST_ARGS)
	SPACEHUB_TEST_DATABASE=postgresql $(VENV)/pytest $(PYTEST_ARGS) tests/unit tests/integration

bench: setup-test
	@command -v nginx >/dev/null && command -v wrk >/dev/null && command -v npm >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk nodejs npm >/dev/null)
	@test -d bench/node/node_modules || npm ci --prefix bench/node --no-audit --no-fund --silent
	$(VENV)/python bench/proxy.py
	PYTHONPATH=. $(VENV)/python bench/scale.py

clean:
	rm -rf .venv data test-artifacts
