"""The positions-as-code example DAG in a real deployment: plan, approval through the REST API, apply.

A deployment of its own (the example's spec names positions the other end-to-end tests change),
with the example DAGs folder as it is. The run's ``approve`` task (the standard provider's
``ApprovalOperator``) defers until someone answers; here the answer comes through Airflow's REST
API, after a recruiter changed one planned position by hand in JobMojito: the apply applies the
approved plan, leaving that position as the recruiter left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.conftest import TIMINGS
from tests.e2e.deployment import ACTIVATE, CLOSED, OUTPUT, Deployment, Profile, run_deployment, wait_for

pytestmark = pytest.mark.e2e

DAG_ID = "jobmojito_positions_as_code"
SET_STATE = "/functions/v1/job-interview-set-state"
#: What jobmojito_positions.yaml says of the seed: ACTIVATE[0] draft -> active, ACTIVATE[1]
#: draft -> archived, CLOSED[0] active and embedded already.
OPENS, CLOSES, STAYS = ACTIVATE[0], ACTIVATE[1], CLOSED[0]

PROFILE = Profile(output=OUTPUT / "positions_as_code", dag_files=(), dag_ids=(DAG_ID,))


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    yield from run_deployment(PROFILE, TIMINGS)


def hitl_path(run_id: str, task_id: str = "approve") -> str:
    return f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/-1/hitlDetails"


def set_state_calls(deployment: Deployment) -> list[dict[str, Any]]:
    return [r for r in deployment.sandbox("GET", "/_sandbox/requests")["requests"] if r["path"] == SET_STATE]


def test_the_approved_plan_is_applied_and_a_position_changed_since_is_not_overwritten(
    deployment: Deployment,
) -> None:
    run_id = deployment.trigger(DAG_ID, {})

    def asked() -> dict[str, Any] | None:
        deployment.check_alive()
        run = deployment.dag_run(DAG_ID, run_id)
        assert run["state"] in ("queued", "running"), deployment.describe_run(DAG_ID, run_id)
        tis = {ti["task_id"]: ti["state"] for ti in deployment.task_instances(DAG_ID, run_id)}
        # The standard provider parks the task in awaiting_input on Airflow 3.3, defers it before.
        if tis.get("approve") not in ("awaiting_input", "deferred"):
            return None
        detail: dict[str, Any] = deployment.api("GET", hitl_path(run_id))
        return detail

    detail = wait_for("the approval to be asked", asked, 180.0, interval=1.0)
    # The approver reads the plan in the approval's body; nothing has been written yet.
    assert detail["subject"] == "Apply the JobMojito positions plan?"
    assert "2 change(s), 1 unchanged, 0 skipped" in detail["body"]
    assert f"| {OPENS} | Data Engineer (Berlin) | draft | active | desired |" in detail["body"]
    assert f"| {CLOSES} | Analytics Engineer (Remote) | draft | archived | desired |" in detail["body"]
    assert set_state_calls(deployment) == []

    # Meanwhile a recruiter closes the Analytics Engineer position by hand in JobMojito.
    deployment.sandbox("POST", f"/_sandbox/positions/{CLOSES}/status", json={"status": "completed"})

    # An approval the scheduler acts on before it has heard that the parked task's process ended
    # fails the task ("finished with state success, but the task instance's state attribute is
    # queued": Airflow 3.3.2's LocalExecutor). A person never clicks that fast; wait for that event.
    process_ended = (
        f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{DAG_ID}', "
        f"task_id='approve', run_id='{run_id}', try_number=1"
    )
    scheduler_log = deployment.component_logs / "scheduler.log"
    wait_for(
        "the scheduler to see the parked approval's process end",
        lambda: deployment.check_alive() or process_ended in scheduler_log.read_text(errors="replace"),
        120.0,
    )
    deployment.api("PATCH", hitl_path(run_id), json={"chosen_options": ["Approve"]})
    run = deployment.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", deployment.describe_run(DAG_ID, run_id)

    positions = deployment.positions()
    assert [positions[p]["status"] for p in (OPENS, CLOSES, STAYS)] == ["active", "completed", "active"]
    assert [c["json"] for c in set_state_calls(deployment)] == [{"position_id": OPENS, "status": "active"}]
    xcom = deployment.api(
        "GET",
        f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/apply/xcomEntries/return_value",
        params={"deserialize": True},
    )
    applied = xcom["value"]
    assert applied["applied"] == 1
    [skipped] = applied["skipped"]
    assert skipped["position_id"] == CLOSES
    assert "changed since the plan" in skipped["reason"]
    # The run's logs (the plan's table, the writes) hold no password or token.
    for log in deployment.all_log_files():
        text = log.read_text(errors="replace")
        assert not [secret for secret in deployment.secrets if secret in text], log
