"""What the read-side end-to-end tests check, on any deployment profile (LocalExecutor, Celery)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any
from urllib.parse import quote

from tests.e2e.deployment import COMPLETES, PREPARING, RUN_TIMEOUT, Deployment, wait_for

WAIT_DAG = "jobmojito_e2e_wait"
WATCH_DAG = "jobmojito_archive_when_completed"
LIST = "/functions/v1/merchant-interview-list"


def sensor_state(deployment: Deployment, run_id: str) -> str | None:
    [ti] = deployment.task_instances(WAIT_DAG, run_id)
    state: str | None = ti["state"]
    return state


def check_deferrable_sensor(deployment: Deployment) -> dict[str, Any]:
    """A deferrable sensor frees its worker slot (state ``deferred``), then completes once JobMojito
    has prepared the position; return the finished run."""
    run_id = deployment.trigger(WAIT_DAG, {"position_id": PREPARING})
    wait_for("the sensor to defer", lambda: sensor_state(deployment, run_id) == "deferred", RUN_TIMEOUT, 0.5)
    # Deferred: the task holds no worker slot while the triggerer polls.
    assert deployment.positions()[PREPARING]["status"] == "preparing"
    deployment.sandbox("POST", f"/_sandbox/positions/{PREPARING}/status", json={"status": "draft"})
    run = deployment.wait_for_run(WAIT_DAG, run_id)
    assert run["state"] == "success", deployment.describe_run(WAIT_DAG, run_id)
    [ti] = deployment.task_instances(WAIT_DAG, run_id)
    assert ti["try_number"] == 1
    return run


def watched_polls(deployment: Deployment) -> int:
    requests = deployment.sandbox("GET", "/_sandbox/requests")["requests"]
    return sum(1 for r in requests if r["path"] == LIST and r.get("query", {}).get("status") == "completed")


def check_completed_position_starts_the_archive_dag(deployment: Deployment) -> dict[str, Any]:
    """A recruiter completes a position in JobMojito: the AssetWatcher's trigger sees it, and the
    scheduler starts ``jobmojito_archive_when_completed``, which archives it; return that run."""
    # The watch has taken its baseline (positions already completed do not fire) and polled again.
    wait_for("the watcher's first polls", lambda: watched_polls(deployment) >= 2, RUN_TIMEOUT, 0.5)
    deployment.sandbox("POST", f"/_sandbox/positions/{COMPLETES}/status", json={"status": "completed"})

    def started() -> str | None:
        runs = deployment.api("GET", f"/dags/{WATCH_DAG}/dagRuns", params={"run_type": "asset_triggered"})
        return runs["dag_runs"][0]["dag_run_id"] if runs["dag_runs"] else None

    run_id: str = wait_for("the asset-triggered archive run", started, RUN_TIMEOUT, 1.0)
    run = deployment.wait_for_run(WATCH_DAG, run_id)
    assert run["state"] == "success", deployment.describe_run(WATCH_DAG, run_id)
    position = deployment.positions()[COMPLETES]
    assert position["status"] == "archived"
    assert position["embed_id"] is None
    return run


def watch_fired(deployment: Deployment) -> Counter[str]:
    """How many asset events the watch recorded for each position (its payload's ``position_id``)."""
    events = deployment.api("GET", "/assets/events", params={"limit": 100})["asset_events"]
    payloads = [(event.get("extra") or {}).get("payload") or {} for event in events]
    return Counter(str(payload["position_id"]) for payload in payloads if "position_id" in payload)


def archive_runs_for(deployment: Deployment, position_id: str) -> list[str]:
    """The asset-triggered runs of the archive DAG whose triggering events name the position."""
    runs = deployment.api("GET", f"/dags/{WATCH_DAG}/dagRuns", params={"run_type": "asset_triggered"})
    found = []
    for run in runs["dag_runs"]:
        if run.get("start_date") is None:
            # Airflow 3.3's API answers 500 for the events of a run still queued (its event
            # response requires the created run's start_date): asked again once it started.
            continue
        path = f"/dags/{WATCH_DAG}/dagRuns/{quote(run['dag_run_id'], safe='')}/upstreamAssetEvents"
        events = deployment.api("GET", path)
        named = [
            ((e.get("extra") or {}).get("payload") or {}).get("position_id") for e in events["asset_events"]
        ]
        if position_id in named:
            found.append(run["dag_run_id"])
    return found


def check_a_restarted_triggerer_fires_what_was_completed_while_it_was_down(deployment: Deployment) -> None:
    """The triggerer dies (SIGKILL) and is started again: the watch resumes from the watermark it
    keeps in its asset's state store (Airflow 3.3). A position completed while it was down starts
    the archive DAG once; none completed before starts a run."""
    old, down = str(uuid.uuid4()), str(uuid.uuid4())
    deployment.sandbox(
        "POST",
        "/_sandbox/positions",
        json=[
            # Completed long ago: never an entry, before the restart or after it.
            {"id": old, "name": "Closed (2025)", "status": "completed", "updated_at": "2025-06-01T00:00:00Z"},
            {"id": down, "name": "Backend Engineer (Porto)", "status": "active", "embedded": True},
        ],
    )
    polls = watched_polls(deployment)
    wait_for("the watch to list them", lambda: watched_polls(deployment) >= polls + 2, RUN_TIMEOUT, 0.5)
    fired_before = watch_fired(deployment)
    deployment.kill("triggerer")
    deployment.sandbox("POST", f"/_sandbox/positions/{down}/status", json={"status": "completed"})
    deployment.start("triggerer")

    runs: list[str] = wait_for(
        "the archive run for the position completed while the triggerer was down",
        lambda: archive_runs_for(deployment, down),
        RUN_TIMEOUT,
        1.0,
    )
    run = deployment.wait_for_run(WATCH_DAG, runs[0])
    assert run["state"] == "success", deployment.describe_run(WATCH_DAG, runs[0])
    assert deployment.positions()[down]["status"] == "archived"
    # The restarted watch polls on: still nothing else fires.
    polls = watched_polls(deployment)
    wait_for("two more polls", lambda: watched_polls(deployment) >= polls + 2, RUN_TIMEOUT, 0.5)
    assert watch_fired(deployment) - fired_before == Counter({down: 1})
    assert archive_runs_for(deployment, down) == runs[:1]
    assert deployment.positions()[old]["status"] == "completed"
