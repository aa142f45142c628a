# Two commands get a newcomer running: `make demo` and `make test`.
# Each creates its own virtualenv (.venv) the first time.
# The developers' tools are pyproject.toml's dependency groups (test, e2e, celery), not extras:
# `pip install --group` needs pip 25.1 or later, so every virtualenv upgrades pip first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
BIN := $(VENV)/bin
PYTEST_STRICT := -W error::DeprecationWarning -W error::FutureWarning

.PHONY: test lint demo sandbox clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e . --group test
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
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info docs/_build

# The documentation (docs/, see docs/conf.py): Sphinx with MyST-Parser, built offline into
# docs/_build/html with every warning an error (-W --keep-going; -n: every reference resolves; -E:
# read every page again, so a second run reports the same warnings), then tests/docs/test_build.py
# checks the built site. Its tools (docs/requirements.txt) go into .venv, next to Airflow and the
# package that autodoc imports.
.PHONY: docs

$(BIN)/.installed-docs: $(BIN)/.installed docs/requirements.txt
	$(BIN)/pip install --quiet -r docs/requirements.txt
	touch $@

docs: $(BIN)/.installed-docs
	rm -rf docs/_build/html
	$(BIN)/python -m sphinx -E -W --keep-going -n -q -b html docs docs/_build/html
	JOBMOJITO_DOCS_BUILD=docs/_build/html $(BIN)/pytest $(PYTEST_STRICT) -p no:cacheprovider tests/docs/test_build.py

# The end-to-end tests (tests/e2e): a real Airflow deployment (API server, scheduler with the
# LocalExecutor, DAG processor) running the example DAGs against the sandbox, and the connection
# form in headless Chromium. Installs selenium (the e2e dependency group) and Debian's chromium and
# chromium-driver first. `make test` skips these tests.
.PHONY: test-e2e

$(BIN)/.installed-e2e: $(BIN)/.installed
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e . --group test --group e2e
	touch $@

test-e2e: $(BIN)/.installed-e2e
	bash scripts/install_e2e_deps.sh
	JOBMOJITO_E2E=1 $(BIN)/pytest $(PYTEST_STRICT) -m e2e tests/e2e $(PYTEST_ARGS)

# The distributed end-to-end tests (tests/e2e/test_celery.py): the CeleryExecutor with two workers,
# a triggerer, PostgreSQL as metadata database and result backend, Redis as broker, all on this
# machine: the example DAGs, 200 positions mapped and in bulk, a worker killed mid-run. Installs the
# celery dependency group and Debian's postgresql and redis-server first. Neither `make test` nor
# `make test-e2e` runs these tests. Figures and logs go to .test_output/e2e-celery.
.PHONY: test-e2e-celery

$(BIN)/.installed-e2e-celery: $(BIN)/.installed
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e . --group test --group celery
	touch $@

test-e2e-celery: $(BIN)/.installed-e2e-celery
	bash scripts/install_e2e_celery_deps.sh
	JOBMOJITO_E2E_CELERY=1 $(BIN)/pytest $(PYTEST_STRICT) -m e2e_celery tests/e2e $(PYTEST_ARGS)

# Benchmarks (benchmarks/): per-call overhead against requests and HttpHook, bulk state changes at
# 20 ms of latency, peak memory, and DAG parse cost. Prints one table; takes about two minutes.
.PHONY: bench

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run

# Packaging (scripts/check_dist.py): build the sdist and the wheel into dist/, check them with
# `twine check --strict`, render the README as PyPI does, rate the packaging with pyroma (10/10 or
# a failure), check the wheel's content (the package and py.typed, nothing of tests/,
# benchmarks/, example_dags/ or scripts/), and check that the wheel built from the sdist equals one
# built from the tree. The build tools live in .venv-dist.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' airflow_provider_jobmojito/__init__.py)
WHEEL := dist/airflow_provider_jobmojito-$(VERSION)-py3-none-any.whl
DIST_SOURCES := pyproject.toml MANIFEST.in README.md CHANGELOG.md LICENSE scripts/check_dist.py \
	$(shell find airflow_provider_jobmojito -name '*.py' -o -name py.typed)

.PHONY: dist

# readme_renderer's md extra: without it twine check passes a Markdown README it never rendered.
.venv-dist/.installed: Makefile
	$(PYTHON) -m venv .venv-dist
	.venv-dist/bin/pip install --quiet --upgrade pip
	.venv-dist/bin/pip install --quiet build twine "readme_renderer[md]" "pyroma>=5"
	touch $@

dist: .venv-dist/.installed
	.venv-dist/bin/python scripts/check_dist.py

$(WHEEL): $(DIST_SOURCES) | .venv-dist/.installed
	.venv-dist/bin/python scripts/check_dist.py

# The (Python, Airflow) matrix: the suite run against the installed wheel (scripts/test_installed.py,
# from a copy of tests/ and example_dags/ so that this checkout cannot shadow the wheel), each pair
# in a virtualenv of its own (.venv-py3.12-af3.3) with Airflow at the line's newest patch release,
# the wheel and the test dependency group (not `pip install -e`), and no tests/e2e (`make test-e2e`).
# Lint does not depend on the pair: `make lint` runs it once. Each pair's install takes one to two
# minutes.
#   make test-matrix                                        # every pair, then one line per pair
#   make test-matrix MATRIX="py3.12-af3.3 py3.12-af2.11"    # what .ci/run runs
#   make test-py3.12-af2.11                                 # one pair
# Every Python and every Airflow line at least once; the newest Airflow on the newest Python; 2.11
# on 3.12, the newest Python it supports.
MATRIX_ALL := py3.12-af2.11 py3.11-af3.0 py3.11-af3.1 py3.12-af3.2 py3.12-af3.3 py3.13-af3.3
MATRIX ?= $(MATRIX_ALL)
AIRFLOW_PIN_2.11 := 2.11.2
AIRFLOW_PIN_3.0 := 3.0.6
AIRFLOW_PIN_3.1 := 3.1.8
AIRFLOW_PIN_3.2 := 3.2.2
AIRFLOW_PIN_3.3 := 3.3.2
# Each Python: PYTHON_3.12=/path/to/python3.12 overrides; otherwise pyenv's newest 3.12, else the
# python3.12 on PATH.
find_python = $(or $(PYTHON_$(1)),$(firstword $(wildcard $(shell pyenv prefix $(1) 2>/dev/null)/bin/python$(1))),$(shell command -v python$(1)))
# Installed after Airflow, in a second step (in one step pip's resolver backtracks for many minutes).
# 3.0: apache-airflow-providers-fab brings wtforms and flask_appbuilder, so the connection form takes
# the path Airflow 3.0 and 3.1 use, the hook's classmethods (3.1 runs without it: the form's tests
# skip there, and the connection works without the form).
AIRFLOW_EXTRA_3.0 := apache-airflow-providers-fab
# Pins Airflow's constraint files would give, per line: without the constraint file, pip takes the
# newest release of every dependency, some newer than the Airflow release and incompatible with it.
# 3.0: its Task SDK client sends JSON without a Content-Type header, which FastAPI 0.132 and later
# refuse (422), so no task could start.
# 3.2 (3.2.2 came out on 2026-05-29; each bound below is the first release after that date):
#   fastapi<0.137 (0.137.0, 2026-06-14): with 0.137 and later the Execution API cannot build its
#     schema, "TITerminalStatePayload needs a discriminator field", and every task under dag.test()
#     fails. Pinning pydantic (<2.14) or cadwyn (<7) instead does not help.
#   svcs<26 (26.1.0, 2026-07-13): svcs 26 keeps its registry elsewhere than where the Execution
#     API of 3.2 reads it ("'State' object has no attribute 'svcs_registry'"), so tasks fail too.
#   sqlalchemy<2.1: as for 3.1, below.
# 3.1 (3.1.8 came out on 2026-03-11) and 3.2: sqlalchemy<2.1 (2.1.0, 2026-09-24): their models use
#   the `noload` loader strategy, which SQLAlchemy 2.1 deprecates; under dag.test() the warning
#   (an error by our rule) breaks the task runs.
# 2.11: cryptography<51 (51 makes MultiFernet a Rust class, to which Airflow 2.11.2 cannot add its
#   is_encrypted attribute): once a fernet key is set, no connection password can be read
#   ("'MultiFernet' object has no attribute 'is_encrypted'", then "The conn_id ... isn't defined").
#   Seen on 2026-12-06 with 51.0.1; 45.0.7 to 50.0.2 work.
# 3.3.2 works with the newest releases of everything.
AIRFLOW_PINS_2.11 := "cryptography<51"
AIRFLOW_PINS_3.0 := "fastapi[standard]<0.132"
AIRFLOW_PINS_3.1 := "sqlalchemy<2.1"
AIRFLOW_PINS_3.2 := "fastapi<0.137" "svcs<26" "sqlalchemy<2.1"
# Warnings made errors, per line. 3.3: the team's rule, every deprecation. 3.2: the same, less one
# that Airflow 3.2.2's API server raises by itself when it builds the connection form
# (ProvidersManager.hooks, which 3.2 deprecates with a FutureWarning, read by its own
# HookMetaService). 3.1: the same, less the four below for 3.0, which Airflow 3.1.8 and its newest
# dependencies raise as well (BaseBranchOperator's as a FutureWarning there). 3.0: the same, less
# four that Airflow 3.0.6 and its newest dependencies raise by themselves (the newest standard
# provider on `from airflow.sdk import task`; starlette and anyio under 3.0's Execution API; 3.0's
# own Execution API serving a connection). 2.11: none from the command
# line, since Airflow 2.11's Flask stack, SQLAlchemy 1.4 and its template context warn by
# themselves. On every line, pyproject's filterwarnings make any deprecation raised from our
# package, the tests or the example DAGs an error.
PYTEST_STRICT_2.11 :=
PYTEST_STRICT_3.0 := $(PYTEST_STRICT) \
	-W 'ignore:The `airflow.operators.branch.BaseBranchOperator` class is deprecated:DeprecationWarning' \
	-W 'ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning' \
	-W "ignore:'HTTP_422_UNPROCESSABLE_ENTITY' is deprecated:DeprecationWarning" \
	-W 'ignore:Using Connection.get_connection_from_secrets from `airflow.models` is deprecated:DeprecationWarning'
PYTEST_STRICT_3.1 := $(PYTEST_STRICT) \
	-W 'ignore:The `airflow.operators.branch.BaseBranchOperator` attribute is deprecated:FutureWarning' \
	-W 'ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning' \
	-W "ignore:'HTTP_422_UNPROCESSABLE_ENTITY' is deprecated:DeprecationWarning" \
	-W 'ignore:Using Connection.get_connection_from_secrets from `airflow.models` is deprecated:DeprecationWarning'
PYTEST_STRICT_3.2 := $(PYTEST_STRICT) \
	-W 'ignore:ProvidersManager.hooks is deprecated:FutureWarning'
PYTEST_STRICT_3.3 := $(PYTEST_STRICT)

.PHONY: test-matrix clean-matrix

# $(1): Python version, $(2): Airflow line. The venv is rebuilt when pyproject.toml or the Makefile
# change; the wheel is reinstalled (same version, so --force-reinstall) whenever it is rebuilt.
define MATRIX_PAIR_RULES
.PHONY: test-py$(1)-af$(2)
.venv-py$(1)-af$(2)/.installed: pyproject.toml Makefile
	rm -rf .venv-py$(1)-af$(2)
	$$(call find_python,$(1)) -m venv .venv-py$(1)-af$(2)
	.venv-py$(1)-af$(2)/bin/pip install --quiet --upgrade pip
	.venv-py$(1)-af$(2)/bin/pip install --quiet "apache-airflow==$$(AIRFLOW_PIN_$(2))" $$(AIRFLOW_PINS_$(2))
	$$(if $$(AIRFLOW_EXTRA_$(2)),.venv-py$(1)-af$(2)/bin/pip install --quiet \
		"apache-airflow==$$(AIRFLOW_PIN_$(2))" $$(AIRFLOW_PINS_$(2)) $$(AIRFLOW_EXTRA_$(2)))
	touch $$@

.venv-py$(1)-af$(2)/.wheel: .venv-py$(1)-af$(2)/.installed $$(WHEEL)
	.venv-py$(1)-af$(2)/bin/pip install --quiet "apache-airflow==$$(AIRFLOW_PIN_$(2))" $$(AIRFLOW_PINS_$(2)) \
		"$$(WHEEL)" --group test
	.venv-py$(1)-af$(2)/bin/pip install --quiet --no-deps --force-reinstall "$$(WHEEL)"
	touch $$@

test-py$(1)-af$(2): .venv-py$(1)-af$(2)/.wheel
	.venv-py$(1)-af$(2)/bin/python scripts/test_installed.py $$(PYTEST_STRICT_$(2)) $$(PYTEST_ARGS)
endef
# A pair's rules, for every pair named in MATRIX_ALL or MATRIX: py3.12-af3.3 -> (3.12, 3.3).
pair_python = $(patsubst py%,%,$(word 1,$(subst -af, ,$(1))))
pair_airflow = $(word 2,$(subst -af, ,$(1)))
$(foreach pair,$(sort $(MATRIX_ALL) $(MATRIX)),\
	$(eval $(call MATRIX_PAIR_RULES,$(call pair_python,$(pair)),$(call pair_airflow,$(pair)))))

test-matrix: $(WHEEL)
	@summary=; status=0; \
	for pair in $(MATRIX); do \
		start=$$(date +%s); \
		if $(MAKE) --no-print-directory test-$$pair; then result=passed; else result=FAILED; status=1; fi; \
		summary="$$summary\n  $$pair: $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	printf "(Python, Airflow) matrix, from $(WHEEL):$$summary\n"; exit $$status

clean-matrix:
	rm -rf .venv-py3.* .venv-lowest .venv-dist dist

# The lowest versions the requirements allow: the suite against the wheel, as for a pair of the
# matrix, on the lowest Python (3.11), with every requirement of pyproject.toml (the test group's
# too) at its lower bound (uv's --resolution lowest-direct: Airflow 2.11.0, common-compat 1.22.0,
# requests 2.31, ...), what those need at its newest, and the 2.11 line's pins as constraints.
# JOBMOJITO_LOWEST=1 makes tests/test_dependencies.py check that each bound is what got installed.
# Airflow 2.11.0 also allows universal-pathlib 0.3, with which its ObjectStoragePath cannot be made
# (2.11.1 and later require <0.3, as 2.11.0's constraint file does): the export's error names it.
LOWEST_PINS := $(AIRFLOW_PINS_2.11) "universal-pathlib<0.3"
.PHONY: test-lowest

.venv-lowest/.installed: pyproject.toml Makefile
	rm -rf .venv-lowest
	$(call find_python,3.11) -m venv .venv-lowest
	.venv-lowest/bin/pip install --quiet uv
	printf '%s\n' $(LOWEST_PINS) > .venv-lowest/constraints.txt
	.venv-lowest/bin/uv pip install --quiet --python .venv-lowest/bin/python --resolution lowest-direct \
		-r pyproject.toml --group test --constraint .venv-lowest/constraints.txt
	touch $@

.venv-lowest/.wheel: .venv-lowest/.installed $(WHEEL)
	.venv-lowest/bin/uv pip install --quiet --python .venv-lowest/bin/python --no-deps \
		--reinstall-package airflow-provider-jobmojito "$(WHEEL)"
	touch $@

test-lowest: .venv-lowest/.wheel
	JOBMOJITO_LOWEST=1 .venv-lowest/bin/python scripts/test_installed.py $(PYTEST_STRICT_2.11) $(PYTEST_ARGS)
