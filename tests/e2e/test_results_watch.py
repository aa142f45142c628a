"""The result watcher in a real LocalExecutor deployment: results created in JobMojito start a DAG
from the triggerer, whose run names them."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.e2e.deployment import RUN_TIMEOUT, Deployment, seconds_between, wait_for

pytestmark = pytest.mark.e2e

RESULTS_DAG = "jobmojito_e2e_results_watch"
RESULT_LIST = "/functions/v1/merchant-result-list"


def result_polls(deployment: Deployment) -> int:
    requests = deployment.sandbox("GET", "/_sandbox/requests")["requests"]
    return sum(1 for r in requests if r["path"] == RESULT_LIST)


def test_results_created_in_jobmojito_start_a_dag_from_the_triggerer(deployment: Deployment) -> None:
    # The watch has taken its start (results already there do not fire) and polled again.
    wait_for("the result watcher's first polls", lambda: result_polls(deployment) >= 2, RUN_TIMEOUT, 0.5)
    created = deployment.sandbox("POST", "/_sandbox/results", json={"create": 3})["created"]

    def started() -> str | None:
        runs = deployment.api("GET", f"/dags/{RESULTS_DAG}/dagRuns", params={"run_type": "asset_triggered"})
        return runs["dag_runs"][0]["dag_run_id"] if runs["dag_runs"] else None

    run_id: str = wait_for("the asset-triggered run", started, RUN_TIMEOUT, 1.0)
    run = deployment.wait_for_run(RESULTS_DAG, run_id)
    assert run["state"] == "success", deployment.describe_run(RESULTS_DAG, run_id)
    run_path = f"/dags/{RESULTS_DAG}/dagRuns/{quote(run_id, safe='')}"
    path = f"{run_path}/taskInstances/changed_results/xcomEntries/return_value"
    assert sorted(deployment.api("GET", path)["value"]) == sorted(created)
    deployment.timings["run jobmojito_e2e_results_watch (result watcher)"] = seconds_between(
        run["start_date"], run["end_date"]
    )
