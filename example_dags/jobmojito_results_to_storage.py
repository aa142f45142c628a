"""Interview results of the day into a data pipeline: JSON Lines in object storage, then a summary.

Every day, ``InterviewResultsToStorageOperator`` exports the interview results updated in the
run's data interval (moved back by five minutes, so results still being written land in the next
day's file) to one JSON Lines file named after the window, written atomically: a retry or a
backfill of a day overwrites its file. A downstream task reads the file back and summarises the
results per position (how many, how many scored, the mean score).

The files go to a local object-storage folder, ``file://<temp dir>/jobmojito_results`` by
default; ``JOBMOJITO_RESULTS_FOLDER`` (read when the file is parsed) names another, and any
``ObjectStoragePath`` URL works the same (``s3://bucket/results`` with an ``aws_default``
connection, ``gs://...``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Asset, ObjectStoragePath, task

from airflow_provider_jobmojito.operators.results import InterviewResultsToStorageOperator

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2
    from airflow.timetables.interval import CronDataIntervalTimetable

#: Where the day files go: a folder URL any ObjectStoragePath takes.
FOLDER = os.environ.get(
    "JOBMOJITO_RESULTS_FOLDER", (Path(tempfile.gettempdir()) / "jobmojito_results").as_uri()
)

# [START howto_results_to_storage]
RESULTS = Asset("jobmojito://results/daily")

with DAG(
    dag_id="jobmojito_results_to_storage",
    # A schedule with data intervals: each run exports the day before it. (Airflow 3's plain cron
    # schedules give a run no interval unless [scheduler] create_cron_data_intervals is on.)
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jobmojito", "example"],
    doc_md=__doc__,
):
    export = InterviewResultsToStorageOperator(
        task_id="export_results",
        destination=FOLDER,
        outlets=[RESULTS],  # its event's extra holds the path, the count and the window
    )
    # [END howto_results_to_storage]

    # [START howto_results_summary]
    @task
    def summarise(exported: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Results per position (``definition_id``): how many, how many scored, the mean score."""
        counts: dict[str, int] = defaultdict(int)
        scores: dict[str, list[float]] = defaultdict(list)
        with ObjectStoragePath(exported["path"]).open("r", encoding="utf-8") as lines:
            # Line by line (Airflow 2's file wrapper cannot be iterated directly).
            for line in iter(lines.readline, ""):
                result = json.loads(line)
                position = str(result.get("definition_id"))
                counts[position] += 1
                if isinstance(result.get("score"), int | float):
                    scores[position].append(float(result["score"]))
        return {
            position: {
                "results": count,
                "scored": len(scores[position]),
                "mean_score": round(sum(scores[position]) / len(scores[position]), 1)
                if scores[position]
                else None,
            }
            for position, count in sorted(counts.items())
        }

    summarise(export.output)
    # [END howto_results_summary]
