"""Archive positions as soon as a recruiter marks them completed in JobMojito.

Recruiters close hiring in JobMojito's own admin, which sets a position's status to
``completed``; nothing in Airflow is told. This DAG is scheduled on an Asset watched by
``InterviewStateChangeTrigger(status="completed")``: the triggerer polls JobMojito, and each
position that enters ``completed`` records an Asset event (its payload: ``position_id``,
``status``, ``updated_at``), which starts a run. The run archives those positions and switches
their embedding off, in one bulk task.

The watcher polls every 60 s; ``JOBMOJITO_WATCH_POLL_INTERVAL`` (seconds), read when the file is
parsed, changes that for demos and tests.

Needs Airflow 3.0 or later (``AssetWatcher``); on Airflow 2 this file defines no DAG.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Asset, Param, task

from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator

try:
    from airflow.sdk import AssetWatcher
except ImportError:  # Airflow 2: no event-driven scheduling, so no DAG here
    AssetWatcher = None


def _canonical(position_id: str) -> str:
    try:
        return str(uuid.UUID(str(position_id)))
    except ValueError:
        return position_id  # not an id: the archive task refuses it, naming it, without retries


#: Seconds between the watcher's polls of JobMojito.
POLL_INTERVAL = float(os.environ.get("JOBMOJITO_WATCH_POLL_INTERVAL", "60"))

if AssetWatcher is not None:
    from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

    # [START howto_trigger_asset_watcher]
    COMPLETED = Asset(
        "jobmojito://positions/completed",
        watchers=[
            AssetWatcher(
                name="jobmojito_positions_completed",
                trigger=InterviewStateChangeTrigger(status="completed", poll_interval=POLL_INTERVAL),
            )
        ],
    )
    # [END howto_trigger_asset_watcher]

    with DAG(
        dag_id="jobmojito_archive_when_completed",
        schedule=[COMPLETED],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        # A manual run archives the positions given here instead.
        params={"position_ids": Param([], type="array", items={"type": "string"})},
        tags=["jobmojito", "example"],
        doc_md=__doc__,
    ):
        # [START howto_trigger_event_payload]
        @task
        def completed_positions(**context: Any) -> list[str]:
            """The positions the triggering events name (or the params), each once."""
            events = context["triggering_asset_events"].get(COMPLETED, [])
            ids = list(context["params"]["position_ids"])
            ids += [event.extra.get("payload", {}).get("position_id") for event in events]
            return list(dict.fromkeys(_canonical(position_id) for position_id in ids if position_id))

        # [END howto_trigger_event_payload]

        SetInterviewStateOperator(
            task_id="archive",
            position_ids=completed_positions(),
            status="archived",
            is_embedded=False,
            retries=2,
        )
