"""A DAG of the end-to-end tests (``tests/e2e/test_results_watch.py``): started by the result watcher.

``jobmojito_e2e_results_watch`` is scheduled on an Asset watched by
``InterviewResultChangeTrigger``: when interview results are new or updated in JobMojito, the
triggerer's poll sees them and records an event carrying their ids, which starts a run; its task
returns the ids the triggering events name. ``JOBMOJITO_WATCH_POLL_INTERVAL`` (seconds, read at
parse time) sets the poll interval.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Asset, task
from airflow.sdk import AssetWatcher

from airflow_provider_jobmojito.triggers.results import InterviewResultChangeTrigger

CHANGED = Asset(
    "jobmojito://results/changed",
    watchers=[
        AssetWatcher(
            name="jobmojito_results_changed",
            trigger=InterviewResultChangeTrigger(
                poll_interval=float(os.environ.get("JOBMOJITO_WATCH_POLL_INTERVAL", "60"))
            ),
        )
    ],
)

with DAG(
    dag_id="jobmojito_e2e_results_watch",
    schedule=[CHANGED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jobmojito", "e2e"],
    doc_md=__doc__,
):

    @task
    def changed_results(**context: Any) -> list[str]:
        """The result ids the triggering events name, each once, sorted."""
        events = context["triggering_asset_events"].get(CHANGED, [])
        return sorted({str(i) for event in events for i in event.extra.get("payload", {}).get("ids", [])})

    changed_results()
