# Two commands: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data
# Test processes, each with its own embedded database (a file's tests stay in one process).
PYTEST_WORKERS ?= 2

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/consilium serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --seed

lint: $(STAMP)
	$(BIN)/ruff check server resources profiles auth seed tests bench
	$(BIN)/ruff format --check server resources profiles auth seed tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck pytest

# Issue #14's figures in one run (docs/bench.md): read, create, transaction ingest and search at
# 10k and 100k resources, auth on, each beside the raw FastAPI+pymongo floor.
# 1M too: make bench BENCH_ARGS="--max 1000000" (long: the bulk load dominates).
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
