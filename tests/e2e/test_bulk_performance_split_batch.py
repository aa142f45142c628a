"""The same measurements as ``test_bulk_performance.py`` in a deployment that sets
``[logging] secret_mask_adapter = airflow_provider_jobmojito.masking.split_batch``: a bulk call's
signing keys reach the supervisor as one string, which its masker splits with one compile (that
the supervisor then masks every key is shown with Airflow's own handler and masker in
``tests/test_masking.py``; here no key may reach any log file). The figures go to
``.test_output/e2e/split-batch/performance.json``.

This module starts a deployment of its own (and stops it at its end).
"""

from __future__ import annotations

from collections.abc import Iterator
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
from tests.e2e.deployment import (
    BULK_DAG_FILE,
    BULK_DAG_IDS,
    LOCAL,
    OUTPUT,
    Deployment,
    Profile,
    run_deployment,
)

pytestmark = pytest.mark.e2e

SPLIT_BATCH = Profile(
    output=OUTPUT / "split-batch",
    env={
        **LOCAL.env,
        "AIRFLOW__LOGGING__SECRET_MASK_ADAPTER": "airflow_provider_jobmojito.masking.split_batch",
    },
    dag_files=(BULK_DAG_FILE,),
    dag_ids=BULK_DAG_IDS,
)


@pytest.fixture(scope="module")
def split_batch_deployment() -> Iterator[Deployment]:
    yield from run_deployment(SPLIT_BATCH, {})  # its startup times apart from the shared deployment's


@pytest.fixture(scope="module")
def measured(split_batch_deployment: Deployment, figures: dict[str, Any]) -> Measured:
    return measure(
        split_batch_deployment, figures, "bulk performance, split_batch (split-batch/performance.json)"
    )


def test_a_bulk_status_change_changes_every_position(
    split_batch_deployment: Deployment, measured: Measured
) -> None:
    check_the_status_change(split_batch_deployment, measured)


def test_bulk_embedding_embeds_every_position_and_logs_no_key(
    split_batch_deployment: Deployment, measured: Measured
) -> None:
    assert measured.figures["machine"]["secret_mask_adapter"].endswith("masking.split_batch")
    check_the_embedding(split_batch_deployment, measured)


def test_bulk_embedding_in_batches_maps_one_task_per_batch_and_logs_no_key(
    split_batch_deployment: Deployment, measured: Measured
) -> None:
    check_the_batches(split_batch_deployment, measured)


def test_the_figures_are_written_for_the_documentation(
    split_batch_deployment: Deployment, measured: Measured
) -> None:
    check_the_figures_written(split_batch_deployment, measured)
