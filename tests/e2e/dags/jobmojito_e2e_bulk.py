"""DAGs of the end-to-end performance test (``tests/e2e/test_bulk_performance.py``).

Each changes the positions of its ``position_ids`` param in one bulk task, in a real worker, so
that the test can compare what a status change and embedding cost there (Airflow's task
supervisor registers every signing key with its secret masker, one recompile per key):

* ``jobmojito_e2e_bulk_status`` archives them;
* ``jobmojito_e2e_bulk_embed`` switches embedding on.

The test compares them with ``example_dags/jobmojito_embed_in_batches.py`` too.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator

#: Calls at a time in each bulk task, as the benchmark's bulk sections use.
WORKERS = 16
IDS = Param(type="array", items={"type": "string"})


def _dag(dag_id: str, **params: Any) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"position_ids": IDS, **params},
        # So that "{{ params.position_ids }}" renders to the list, not to its text.
        render_template_as_native_obj=True,
        tags=["jobmojito", "e2e"],
        doc_md=__doc__,
    )


with _dag("jobmojito_e2e_bulk_status"):
    SetInterviewStateOperator(
        task_id="change",
        position_ids="{{ params.position_ids }}",
        status="archived",
        max_workers=WORKERS,
    )

with _dag("jobmojito_e2e_bulk_embed"):
    SetInterviewStateOperator(
        task_id="change",
        position_ids="{{ params.position_ids }}",
        is_embedded=True,
        max_workers=WORKERS,
    )
