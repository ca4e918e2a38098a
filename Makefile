# Skillstream developer commands. `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INFRA := deploy/local/infra.sh
# runs a command with KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL pointing at the servers in use
# (the local ones, unless the environment already names external ones)
WITH_INFRA = eval "$$($(INFRA) env)" &&
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install demo bench ralph-venv pybkt-venv browser infra-fetch infra-up infra-down infra-status infra-reset lint format typecheck \
        test test-unit test-integration config-table clean

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11+ is required ($(PYTHON) is older)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its test extras

demo: $(STAMP) infra-up ## THE main job: the whole pipeline on a simulated academy, live (Ctrl-C stops)
	$(WITH_INFRA) $(BIN)/python -m tools.demo $(DEMO_ARGS)

bench: $(STAMP) infra-up ## run every benchmark and rewrite BENCHMARKS.md (takes 20+ minutes)
	$(WITH_INFRA) $(BIN)/python bench/run_all.py $(BENCH_ARGS)

ralph-venv: $(STAMP) ## create .local/ralph-venv: Ralph's LRS 5.1.0, the benchmarks' baseline (make bench does it too)
	$(BIN)/python bench/ralph_lrs.py

pybkt-venv: $(STAMP) ## create .local/pybkt-venv: pyBKT 1.4.3 built from source, the mastery benchmark's reference (make bench does it too)
	$(BIN)/python bench/pybkt_venv.py

browser: ## install Debian's Chromium for the browser tests (once)
	@deploy/local/browser.sh

infra-fetch: ## fetch the Kafka jars and install PostgreSQL (the fault tests start private servers from them)
	@$(INFRA) fetch

infra-up: ## start Kafka (KRaft) and PostgreSQL on 127.0.0.1, or check the external ones
	@$(INFRA) up

infra-down: ## stop the local Kafka and PostgreSQL
	@$(INFRA) down

infra-status: ## say whether Kafka and PostgreSQL are running
	@$(INFRA) status

infra-reset: ## stop the servers and delete their data (the Kafka jars are kept)
	@$(INFRA) reset

lint: $(STAMP) ## ruff: lint rules and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff: fix what can be fixed and reformat
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on shared, services and tests
	$(BIN)/mypy

test: $(STAMP) infra-fetch infra-up browser lint typecheck ## THE test command: install, start servers, ruff, mypy, all tests
	$(WITH_INFRA) $(BIN)/pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## unit tests only (no servers needed)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP) infra-fetch infra-up browser ## integration and end-to-end tests against the real servers
	$(WITH_INFRA) $(BIN)/pytest tests/integration tests/e2e $(PYTEST_ARGS)

config-table: $(STAMP) ## rewrite the configuration table in README.md from the settings classes
	@$(BIN)/python -m services.config_table --write README.md

clean: ## remove the virtual environment and caches (not the servers' data)
	rm -rf $(VENV) .local/ralph-venv .local/pybkt-venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
