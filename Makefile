# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck unit stack-up stack-down clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[demo,train,bench,test]'
	touch $@

# `make demo DEMO_ARGS="--vehicles 10 --duration 120"` passes options to `flota demo`.
DEMO_ARGS ?=
demo: venv
	$(BIN)/flota demo $(DEMO_ARGS)

# Starts the real local stack (Mosquitto, Kafka, TimescaleDB), runs every gate, stops the stack.
test: venv
	deploy/local/with-stack.sh $(MAKE) --no-print-directory lint typecheck unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest

stack-up:
	deploy/local/start.sh

stack-down:
	deploy/local/stop.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
