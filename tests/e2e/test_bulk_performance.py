"""What bulk embedding costs in a real LocalExecutor worker, against a bulk status change, and in
batches, as Airflow is configured by default (``tests/e2e/bulk_performance.py`` says how). The
figures go to ``.test_output/e2e/performance.json``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.bulk_performance import (
    Measured,
    check_the_batches,
    check_the_embedding,
    check_the_figures_written,
    check_the_status_change,
    measure,
)
from tests.e2e.deployment import Deployment

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def measured(deployment: Deployment, figures: dict[str, Any]) -> Measured:
    return measure(deployment, figures, "bulk performance (performance.json)")


def test_a_bulk_status_change_changes_every_position(deployment: Deployment, measured: Measured) -> None:
    check_the_status_change(deployment, measured)


def test_bulk_embedding_embeds_every_position_and_logs_no_key(
    deployment: Deployment, measured: Measured
) -> None:
    check_the_embedding(deployment, measured)


def test_bulk_embedding_in_batches_maps_one_task_per_batch_and_logs_no_key(
    deployment: Deployment, measured: Measured
) -> None:
    check_the_batches(deployment, measured)


def test_the_figures_are_written_for_the_documentation(deployment: Deployment, measured: Measured) -> None:
    check_the_figures_written(deployment, measured)
