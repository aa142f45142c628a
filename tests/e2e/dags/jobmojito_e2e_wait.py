"""A DAG of the end-to-end tests (``tests/e2e/test_read_side.py``): a deferrable sensor.

``jobmojito_e2e_wait`` waits, in the triggerer, until the position in its ``position_id`` param
is ``draft`` or ``active``; the test changes the status through the sandbox meanwhile. Its
``conn_id`` param names the connection (``tests/e2e/test_connection_rotation.py`` rotates one).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_jobmojito.sensors.jobmojito import InterviewStateSensor

with DAG(
    dag_id="jobmojito_e2e_wait",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"position_id": Param(type="string"), "conn_id": Param("jobmojito_default", type="string")},
    tags=["jobmojito", "e2e"],
    doc_md=__doc__,
):
    InterviewStateSensor(
        task_id="wait_until_prepared",
        position_id="{{ params.position_id }}",
        status=["draft", "active"],
        failure_status=["archived", "deleted"],
        jobmojito_conn_id="{{ params.conn_id }}",
        deferrable=True,
        poke_interval=1,
        timeout=300,
    )
