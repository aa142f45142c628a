"""DAGs of ``benchmarks/reschedule_loss.py``: many mapped sensors, in reschedule or deferrable mode.

Each maps one :class:`InterviewStateSensor` per position in its run's ``position_ids`` param, all
waiting for ``active`` every 5 s:

- ``jobmojito_bench_reschedule``: ``mode="reschedule"``, ``poke_interval=5``; the provider refuses
  that below 60 s (Airflow loses such sensors, apache/airflow#71172), so it says
  ``allow_short_reschedule=True``: the loss is what the benchmark measures;
- ``jobmojito_bench_deferrable``: ``deferrable=True``, ``poke_interval=5``, the recommended way.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_jobmojito.sensors.jobmojito import InterviewStateSensor

POKE_INTERVAL = 5
MODES: dict[str, dict[str, Any]] = {
    "jobmojito_bench_reschedule": {"mode": "reschedule", "deferrable": False, "allow_short_reschedule": True},
    "jobmojito_bench_deferrable": {"deferrable": True},
}


@task
def position_ids(**context: Any) -> list[str]:
    return list(context["params"]["position_ids"])


for dag_id, mode in MODES.items():
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"position_ids": Param([], type="array", items={"type": "string"})},
        tags=["jobmojito", "benchmark"],
        doc_md=__doc__,
    ):
        InterviewStateSensor.partial(
            task_id="wait", status="active", poke_interval=POKE_INTERVAL, timeout=3600, **mode
        ).expand(position_id=position_ids())
