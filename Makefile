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

# The end-to-end tests (tests/e2e): a real Airflow deployment (API server, scheduler with the
# LocalExecutor, DAG processor) running the example DAGs against the sandbox, and the connection
# form in headless Chromium. Installs selenium (the e2e extra) and Debian's chromium and
# chromium-driver first. `make test` skips these tests.
.PHONY: test-e2e

$(BIN)/.installed-e2e: $(BIN)/.installed
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,e2e]"
	touch $@

test-e2e: $(BIN)/.installed-e2e
	bash scripts/install_e2e_deps.sh
	JOBMOJITO_E2E=1 $(BIN)/pytest $(PYTEST_STRICT) -m e2e tests/e2e $(PYTEST_ARGS)

# The distributed end-to-end tests (tests/e2e/test_celery.py): the CeleryExecutor with two workers,
# a triggerer, PostgreSQL as metadata database and result backend, Redis as broker, all on this
# machine: the example DAGs, 200 positions mapped and in bulk, a worker killed mid-run. Installs the
# celery extra and Debian's postgresql and redis-server first. Neither `make test` nor
# `make test-e2e` runs these tests. Figures and logs go to .test_output/e2e-celery.
.PHONY: test-e2e-celery

$(BIN)/.installed-e2e-celery: $(BIN)/.installed
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,celery]"
	touch $@

test-e2e-celery: $(BIN)/.installed-e2e-celery
	bash scripts/install_e2e_celery_deps.sh
	JOBMOJITO_E2E_CELERY=1 $(BIN)/pytest $(PYTEST_STRICT) -m e2e_celery tests/e2e $(PYTEST_ARGS)

# Benchmarks (benchmarks/): per-call overhead against requests and HttpHook, bulk state changes at
# 20 ms of latency, peak memory, and DAG parse cost. Prints one table; takes about two minutes.
.PHONY: bench

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run

# The Airflow version matrix: the test suite on each supported Airflow line, each in a virtualenv
# of its own pinned to the line's newest patch release. 3.3 is `make test` itself (ruff, mypy and
# the suite in .venv); the other lines run the suite only (lint does not depend on Airflow), without
# tests/e2e (a deployment of the newest 3.3). Each line's install takes one to two minutes.
#   make test-matrix                          # 2.11, 3.0 and 3.3, then one summary line each
#   make test-matrix AIRFLOW_LINES="3.3 2.11" # what .ci/run runs
#   make test-af2.11                          # one line
AIRFLOW_LINES ?= 2.11 3.0 3.3
AIRFLOW_PIN_2.11 := 2.11.2
AIRFLOW_PIN_3.0 := 3.0.6
# Installed after Airflow, in a second step (in one step pip's resolver backtracks for many minutes).
# 3.0: apache-airflow-providers-fab brings wtforms and flask_appbuilder, so the connection form takes
# the path Airflow 3.0 and 3.1 use, the hook's classmethods.
AIRFLOW_EXTRA_3.0 := apache-airflow-providers-fab
# Pins Airflow's constraint files would give, per line. 3.0: its Task SDK client sends JSON without
# a Content-Type header, which FastAPI 0.132 and later refuse (422), so no task could start.
AIRFLOW_PINS_3.0 := "fastapi[standard]<0.132"
# Warnings made errors, per line. 3.3: the team's rule, every deprecation. 3.0: the same, less four
# that Airflow 3.0.6 and its newest dependencies raise by themselves (the newest standard provider
# on `from airflow.sdk import task`; starlette and anyio under 3.0's Execution API; 3.0's own
# Execution API serving a connection). 2.11: none from the command line, since Airflow 2.11's Flask
# stack, SQLAlchemy 1.4 and its template context warn by themselves. On every line, pyproject's
# filterwarnings make any deprecation raised from our package, the tests or the example DAGs an error.
PYTEST_STRICT_2.11 :=
PYTEST_STRICT_3.0 := $(PYTEST_STRICT) \
	-W 'ignore:The `airflow.operators.branch.BaseBranchOperator` class is deprecated:DeprecationWarning' \
	-W 'ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning' \
	-W "ignore:'HTTP_422_UNPROCESSABLE_ENTITY' is deprecated:DeprecationWarning" \
	-W 'ignore:Using Connection.get_connection_from_secrets from `airflow.models` is deprecated:DeprecationWarning'

.PHONY: test-matrix test-af3.3 clean-matrix

define AIRFLOW_LINE_RULES
.PHONY: test-af$(1)
.venv-af$(1)/.installed: pyproject.toml Makefile
	$$(PYTHON) -m venv .venv-af$(1)
	.venv-af$(1)/bin/pip install --quiet --upgrade pip
	.venv-af$(1)/bin/pip install --quiet "apache-airflow==$$(AIRFLOW_PIN_$(1))" $$(AIRFLOW_PINS_$(1)) -e ".[test]"
	$$(if $$(AIRFLOW_EXTRA_$(1)),.venv-af$(1)/bin/pip install --quiet "apache-airflow==$$(AIRFLOW_PIN_$(1))" \
		$$(AIRFLOW_PINS_$(1)) $$(AIRFLOW_EXTRA_$(1)))
	touch $$@

test-af$(1): .venv-af$(1)/.installed
	.venv-af$(1)/bin/pytest $$(PYTEST_STRICT_$(1)) --ignore=tests/e2e $$(PYTEST_ARGS)
endef
$(foreach line,2.11 3.0,$(eval $(call AIRFLOW_LINE_RULES,$(line))))

test-af3.3: test

test-matrix:
	@summary=; status=0; \
	for line in $(AIRFLOW_LINES); do \
		start=$$(date +%s); \
		if $(MAKE) --no-print-directory test-af$$line; then result=passed; else result=FAILED; status=1; fi; \
		summary="$$summary\n  Airflow $$line: $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	printf "Airflow matrix:$$summary\n"; exit $$status

clean-matrix:
	rm -rf .venv-af*
