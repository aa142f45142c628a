"""DAGs of the distributed end-to-end test (``tests/e2e/test_celery.py``), run next to the examples.

Each takes its positions from the run's ``position_ids`` param:

- ``jobmojito_e2e_mapped``: one mapped task instance per position, each activating it;
- ``jobmojito_e2e_bulk``: the same kind of change for every position in one bulk task (archives);
- ``jobmojito_e2e_slow``: mapped, and each task sleeps before its call, so that a worker can be
  killed while it runs them.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"position_ids": Param([], type="array", items={"type": "string"})},
        tags=["jobmojito", "e2e"],
        doc_md=__doc__,
    )


@task
def position_ids(**context: Any) -> list[str]:
    return list(context["params"]["position_ids"])


class SlowSetInterviewStateOperator(SetInterviewStateOperator):
    """Sleeps ``sleep`` seconds, then sets the state."""

    def __init__(self, *, sleep: float = 15.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleep = sleep

    def execute(self, context: Any) -> Any:
        time.sleep(self.sleep)
        return super().execute(context)


RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=2)}

with _dag("jobmojito_e2e_mapped"):
    SetInterviewStateOperator.partial(task_id="activate", status="active", **RETRIES).expand(
        position_id=position_ids()
    )

with _dag("jobmojito_e2e_bulk"):
    SetInterviewStateOperator(task_id="archive", status="archived", position_ids=position_ids(), **RETRIES)

with _dag("jobmojito_e2e_slow"):
    SlowSetInterviewStateOperator.partial(task_id="activate", status="active", **RETRIES).expand(
        position_id=position_ids()
    )
