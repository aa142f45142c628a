"""Archive positions once hiring closes, and switch their careers-page embedding off.

Two DAGs:

- ``jobmojito_hiring_closed`` stands for the upstream system (an ATS export, say) that knows when
  hiring for a position is over. It records an event on the Asset ``jobmojito://positions/hiring-closed``
  whose ``extra`` lists the closed positions.
- ``jobmojito_archive_closed_positions`` runs on each such event (or by hand, with the
  ``position_ids`` param) and archives every closed position with embedding off, all in one bulk
  task (one API call per position, eight at a time).
"""

from __future__ import annotations

import uuid
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Asset, Param, task

from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator

HIRING_CLOSED = Asset("jobmojito://positions/hiring-closed")

_POSITION_IDS = Param([], type="array", items={"type": "string"}, description="Ids of closed positions.")

with DAG(
    dag_id="jobmojito_hiring_closed",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"position_ids": _POSITION_IDS},
    tags=["jobmojito", "example"],
):

    @task(outlets=[HIRING_CLOSED])
    def announce_closed_positions(**context: Any) -> list[str]:
        ids: list[str] = context["params"]["position_ids"]
        context["outlet_events"][HIRING_CLOSED].extra = {"position_ids": ids}
        return ids

    announce_closed_positions()


def _canonical(position_id: str) -> str:
    try:
        return str(uuid.UUID(str(position_id)))
    except ValueError:
        return position_id  # not an id: the archive task refuses it, naming it, without retries


with DAG(
    dag_id="jobmojito_archive_closed_positions",
    schedule=[HIRING_CLOSED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"position_ids": _POSITION_IDS},
    tags=["jobmojito", "example"],
    doc_md=__doc__,
):

    @task
    def closed_positions(**context: Any) -> list[str]:
        """The ids named by the triggering events, or by the params of a manual run."""
        ids: list[str] = list(context["params"]["position_ids"])
        if "triggering_asset_events" in context:
            events = context["triggering_asset_events"].get(HIRING_CLOSED, [])
        else:  # Airflow 2: dataset events, keyed by URI
            events = context["triggering_dataset_events"].get(HIRING_CLOSED.uri, [])
        for event in events:
            ids.extend(event.extra.get("position_ids", []))
        # Keep order, drop repeats; compared as UUIDs, since one source may spell an id in
        # capitals and the bulk call refuses an id listed twice.
        return list(dict.fromkeys(_canonical(position_id) for position_id in ids))

    # [START howto_operator_bulk]
    # One task for every closed position: hiring often closes for hundreds at once, and one bulk
    # task sets them in parallel instead of scheduling a mapped task per position.
    SetInterviewStateOperator(
        task_id="archive",
        position_ids=closed_positions(),
        status="archived",
        is_embedded=False,
        max_workers=8,
        retries=2,
    )
    # [END howto_operator_bulk]
