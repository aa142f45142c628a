"""A DAG of the end-to-end tests (``tests/e2e/test_reschedule_guard.py``) that must not import.

``jobmojito_e2e_unsafe_reschedule`` maps reschedule-mode sensors that poke every 5 s, which Airflow
loses (apache/airflow#71172: the scheduler fails a sensor whose next poke comes due before it has
recorded the last one). The provider refuses it when the DAG is parsed: the deployment shows an
import error naming the parameters and the safe ways, and the DAG never exists.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_jobmojito.sensors.jobmojito import InterviewStateSensor

with DAG(
    dag_id="jobmojito_e2e_unsafe_reschedule",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jobmojito", "e2e"],
    doc_md=__doc__,
):
    InterviewStateSensor.partial(
        task_id="wait_until_active", status="active", mode="reschedule", poke_interval=5
    ).expand(position_id=["3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"])
