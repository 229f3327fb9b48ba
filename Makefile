# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both create .venv and install the project into it; nothing else needs installing by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# A devnet producer, a syncing node and the load generator on loopback; Ctrl-C stops them.
run: $(BIN)/.installed
	FVM_NODE_SHARED=$(SHARED) $(BIN)/fvm-node devnet demo --dir .devnet

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
