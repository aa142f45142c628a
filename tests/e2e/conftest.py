"""End-to-end tests: real Airflow deployments and a browser.

They are slow, so they run only when asked. Tests marked ``e2e`` (a LocalExecutor deployment, the
browser): ``make test-e2e``, or ``JOBMOJITO_E2E=1 pytest -m e2e``. Tests marked ``e2e_celery`` (a
CeleryExecutor deployment with two workers, PostgreSQL and Redis): ``make test-e2e-celery``, or
``JOBMOJITO_E2E_CELERY=1 pytest -m e2e_celery tests/e2e``. Otherwise they are skipped, and nothing
is started.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.deployment import LOCAL, OUTPUT, Deployment, run_deployment

#: Marker -> (the variable that enables its tests, the make target that sets it).
GATES = {
    "e2e": ("JOBMOJITO_E2E", "make test-e2e"),
    "e2e_celery": ("JOBMOJITO_E2E_CELERY", "make test-e2e-celery"),
}
#: How long things took (startup, each DAG run, the browser test): printed at the end, and saved.
TIMINGS: dict[str, float] = {}
#: What the distributed tests measured besides times: printed at the end, and saved.
FIGURES: dict[str, Any] = {}


def enabled(marker: str) -> bool:
    return os.environ.get(GATES[marker][0], "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, (variable, target) in GATES.items():
        if enabled(marker):
            continue
        skip = pytest.mark.skip(reason=f"end-to-end test: run `{target}` (or set {variable}=1)")
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """``.test_output/e2e``: screenshots, timings and a copy of the deployment's logs."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session")
def figures() -> dict[str, Any]:
    """Figures a test measured, by name: printed at the end, saved with a profile's timings."""
    return FIGURES


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    """A running Airflow 3 deployment with the example DAGs, the sandbox, and ``jobmojito_default``."""
    yield from run_deployment(LOCAL, TIMINGS)


@pytest.fixture(scope="session")
def celery_deployment() -> Iterator[Deployment]:
    """The distributed deployment (``tests/e2e/distributed.py``): CeleryExecutor, two workers,
    PostgreSQL and Redis. Its figures (spread, sign-ins, times) go to ``figures.json``."""
    from tests.e2e.distributed import celery_profile

    yield from run_deployment(celery_profile(), TIMINGS, FIGURES)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("end-to-end timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    if FIGURES:
        terminalreporter.section("end-to-end figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {json.dumps(value)}")
