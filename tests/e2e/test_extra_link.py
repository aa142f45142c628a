"""The "Embedded interview" link of a task that embeds nothing, in a real deployment.

Airflow 3 computes a task's extra links in the worker when the task ends. A task without an embed
URL (a status change, a bulk change) used to make the worker log an ERROR there, "XCom not found
... key=embed_url", as the link asked XCom for a key the task never pushed. The task supervisor's
API client logs it, into the executor's output (the scheduler's log with the LocalExecutor, a
Celery worker's log), not the task's own log file: every log of the deployment is searched.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from tests.e2e.deployment import RUN_TIMEOUT, Deployment, wait_for

pytestmark = pytest.mark.e2e

ACTIVATE_DAG = "jobmojito_activate_positions"
LINK = "Embedded interview"


def lines_with(deployment: Deployment, *parts: str) -> list[str]:
    """Every line of every log of the deployment that holds all of ``parts``."""
    return [
        f"{path.name}: {line}"
        for path in deployment.all_log_files()
        for line in path.read_text(errors="replace").splitlines()
        if all(part in line for part in parts)
    ]


def test_a_status_only_task_logs_no_xcom_not_found_error_and_has_no_link(deployment: Deployment) -> None:
    # A position of this test's own, so the example runs' positions are left alone.
    position_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://jobmojito.test/e2e/extra-link"))
    deployment.sandbox(
        "POST", "/_sandbox/positions", json={"positions": [{"id": position_id, "status": "draft"}]}
    )
    run_id = deployment.trigger(ACTIVATE_DAG, {"position_ids": [position_id]})
    run = deployment.wait_for_run(ACTIVATE_DAG, run_id)
    assert run["state"] == "success", deployment.describe_run(ACTIVATE_DAG, run_id)
    assert deployment.positions()[position_id]["status"] == "active"
    [activate] = [ti for ti in deployment.task_instances(ACTIVATE_DAG, run_id) if ti["task_id"] == "activate"]

    # The task's supervisor has finished, so whatever it logged while the task ended is written.
    wait_for(
        "the activate task's supervisor to finish",
        lambda: lines_with(deployment, "Workload finished", f"workload_id={activate['id']}"),
        RUN_TIMEOUT,
    )
    assert lines_with(deployment, f"position {position_id} -> active (")  # the task's own line
    assert lines_with(deployment, "XCom not found", run_id) == []

    # What the UI shows: the link the worker stored at the task's end, empty.
    path = f"/dags/{ACTIVATE_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/activate/links"
    assert deployment.api("GET", path, params={"map_index": 0})["extra_links"] == {LINK: None}
