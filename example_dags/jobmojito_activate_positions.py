"""Open interview positions on a schedule: every weekday at 08:00, Berlin time.

The positions come from the run's ``position_ids`` param (a manual run can list them) or, on a
scheduled run, from the Airflow Variable ``jobmojito_positions_to_activate`` (a JSON list of ids).
Each position gets its own mapped task, labelled with its id, so one failure is retried and shown
on its own.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, Variable, task

try:  # Airflow 3.2 and later
    from airflow.sdk import CronTriggerTimetable
except ImportError:  # Airflow 2.11 to 3.1
    from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator

POSITIONS_VARIABLE = "jobmojito_positions_to_activate"

with DAG(
    dag_id="jobmojito_activate_positions",
    schedule=CronTriggerTimetable("0 8 * * 1-5", timezone=pendulum.timezone("Europe/Berlin")),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"),
    catchup=False,
    params={
        "position_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            description=f"Positions to activate; empty means the Variable {POSITIONS_VARIABLE}.",
        )
    },
    tags=["jobmojito", "example"],
    doc_md=__doc__,
) as dag:
    # [START howto_operator_mapped]
    @task
    def positions_to_activate(**context: Any) -> list[str]:
        # The default is positional: Airflow 3 calls it `default`, Airflow 2 `default_var`.
        ids: list[str] = context["params"]["position_ids"] or Variable.get(
            POSITIONS_VARIABLE, [], deserialize_json=True
        )
        return ids

    SetInterviewStateOperator.partial(
        task_id="activate",
        status="active",
        retries=2,
        # JobMojito documents no rate limit; a cap per run keeps a long list polite anyway.
        max_active_tis_per_dagrun=8,
    ).expand(position_id=positions_to_activate())
    # [END howto_operator_mapped]
