# mxgate — `make run` brings up the whole stack, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SYNAPSE_VERSION := 1.163.2
VENV := .venv
SYNAPSE_STAMP := $(VENV)/.synapse-$(SYNAPSE_VERSION)
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS_STAMP := $(VENV)/.schemathesis-$(SCHEMATHESIS_VERSION)
RELEASE_BIN := target/release/mxgate

.PHONY: help synapse build setup run stop test bench migrate-up

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(SYNAPSE_STAMP):
	@echo "==> installing matrix-synapse $(SYNAPSE_VERSION) into $(VENV)"
	@python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check "matrix-synapse==$(SYNAPSE_VERSION)"
	@touch $@

synapse: $(SYNAPSE_STAMP) ## Install the pinned Synapse into .venv

# The API fuzz pass of `make test` (tests/api/fuzz.rs), beside Synapse in the same venv.
$(SCHEMATHESIS_STAMP): $(SYNAPSE_STAMP)
	@echo "==> installing schemathesis $(SCHEMATHESIS_VERSION) into $(VENV)"
	@$(VENV)/bin/pip install -q --disable-pip-version-check "schemathesis==$(SCHEMATHESIS_VERSION)"
	@touch $@

build: ## Build the release binary
	@cargo build -q --release --bin mxgate

setup: synapse build ## Write .env and secrets, render Synapse's config, migrate (keeps existing values)
	@$(RELEASE_BIN) setup
	@# Synapse on PostgreSQL (when mxgate is) needs the driver; psycopg2-binary is a wheel, no compiler.
	@if grep -q '^SYNAPSE_DATABASE_URL=' .env; then $(VENV)/bin/pip install -q --disable-pip-version-check psycopg2-binary; fi
	@# Synapse's workers (MXGATE_SYNAPSE_WORKERS=true) replicate through Redis: its `redis` extra.
	@if grep -q '^MXGATE_SYNAPSE_WORKERS=true' .env; then $(VENV)/bin/pip install -q --disable-pip-version-check "matrix-synapse[redis]==$(SYNAPSE_VERSION)"; fi
	@$(VENV)/bin/python -m synapse.app.homeserver -c data/synapse/homeserver.yaml --generate-keys >/dev/null

run: setup ## Start Synapse in the background and mxgate in the foreground
	@scripts/synapse.sh start
	@echo $$$$ > data/mxgate.pid; exec $(RELEASE_BIN) serve

stop: ## Stop what `make run` started
	@if [ -f data/mxgate.pid ] && kill $$(cat data/mxgate.pid) 2>/dev/null; then echo "mxgate stopped"; fi; rm -f data/mxgate.pid
	@scripts/synapse.sh stop

migrate-up: build ## Apply database migrations (DATABASE_URL or .env)
	@$(RELEASE_BIN) migrate

test: synapse $(SCHEMATHESIS_STAMP) ## Run every test on SQLite and on PostgreSQL (started from Debian's packages if none answers)
	@scripts/test.sh

# The bench's second Synapse runs on PostgreSQL (tests/common/synapse.rs): psycopg2, a wheel, no compiler.
PSYCOPG_STAMP := $(VENV)/.psycopg2-binary
$(PSYCOPG_STAMP): $(SYNAPSE_STAMP)
	@echo "==> installing psycopg2-binary into $(VENV)"
	@$(VENV)/bin/pip install -q --disable-pip-version-check psycopg2-binary
	@touch $@

bench: synapse $(PSYCOPG_STAMP) ## Measure throughput, latency and memory against their baselines (release build, a few minutes)
	@scripts/nginx.sh
	@# The databases an earlier run left (mxgate's and Synapse's, one per story) go first.
	@pg=$$(scripts/postgres-url.sh); for db in $$(psql "$$pg" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'mxgate_test_%' OR datname LIKE 'synapse_test_%'"); do psql "$$pg" -qc "DROP DATABASE IF EXISTS $$db" >/dev/null; done
	@MXGATE_TEST_POSTGRES=$$(scripts/postgres-url.sh) cargo bench -q --bench mxgate
