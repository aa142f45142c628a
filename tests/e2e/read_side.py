"""What the read-side end-to-end tests check, on any deployment profile (LocalExecutor, Celery)."""

from __future__ import annotations

from typing import Any

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
