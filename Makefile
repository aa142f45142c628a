# Two commands get a newcomer running: `make demo` and `make test`.
# Each creates its own virtualenv (.venv) the first time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
BIN := $(VENV)/bin
PYTEST_STRICT := -W error::DeprecationWarning -W error::FutureWarning

.PHONY: test lint demo sandbox clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	touch $@

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_STRICT) $(PYTEST_ARGS)

demo: $(BIN)/.installed
	$(BIN)/python scripts/demo.py

sandbox: $(BIN)/.installed
	$(BIN)/jobmojito-sandbox --port 8808 --seed scripts/demo_positions.json

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache
