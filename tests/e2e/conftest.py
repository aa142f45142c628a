"""End-to-end tests: a real Airflow deployment (API server, scheduler, DAG processor) and a browser.

They are slow, so they run only when asked: ``make test-e2e``, or ``JOBMOJITO_E2E=1 pytest -m e2e``.
Otherwise every test marked ``e2e`` is skipped, and nothing is started.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.deployment import OUTPUT, Deployment, keep_logs, start_deployment

E2E_ENV = "JOBMOJITO_E2E"
#: How long things took (startup, each DAG run, the browser test): printed at the end, and saved.
TIMINGS: dict[str, float] = {}


def e2e_enabled() -> bool:
    return os.environ.get(E2E_ENV, "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if e2e_enabled():
        return
    skip = pytest.mark.skip(reason=f"end-to-end test: run `make test-e2e` (or set {E2E_ENV}=1)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """``.test_output/e2e``: screenshots, timings and a copy of the deployment's logs."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session")
def deployment(output_dir: Path) -> Iterator[Deployment]:
    """A running Airflow 3 deployment with the example DAGs, the sandbox, and ``jobmojito_default``."""
    running = start_deployment(timings=TIMINGS)
    try:
        yield running
    finally:
        running.stop()
        keep_logs(running)
        (output_dir / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
        shutil.rmtree(running.home, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("end-to-end timings")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
