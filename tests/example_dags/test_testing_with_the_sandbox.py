"""Testing a DAG against the sandbox, as the documentation shows it (docs/sandbox.md includes the
lines between the markers): the fixture, a fault, a DAG run, and the sandbox's own record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_jobmojito.sandbox import DEFAULT_EMAIL, DEFAULT_PASSWORD
from tests.conftest import load_example_dag

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_the_activate_dag_rides_out_two_503s_and_signs_in_once(
    jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load_example_dag("jobmojito_activate_positions", "jobmojito_activate_positions")
    # [START howto_sandbox_pytest]
    position_id = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"
    jobmojito_sandbox.seed([{"id": position_id, "status": "draft"}])
    # The next two set-state calls answer 503: the hook retries them.
    jobmojito_sandbox.add_fault("status", status=503, count=2, path="/functions/v1/job-interview-set-state")
    connection = {
        "conn_type": "jobmojito",
        "host": jobmojito_sandbox.api_url,
        "login": DEFAULT_EMAIL,  # sign-in mode, with the sandbox's account
        "password": DEFAULT_PASSWORD,
        "extra": {"backoff_factor": 0.01},  # retry at once: a test need not wait
    }
    monkeypatch.setenv("AIRFLOW_CONN_JOBMOJITO_DEFAULT", json.dumps(connection))

    run = dag.test(run_conf={"position_ids": [position_id]})

    assert run.state == "success"
    assert jobmojito_sandbox.position(position_id)["status"] == "active"
    assert jobmojito_sandbox.sign_ins()["total"] == 1
    # [END howto_sandbox_pytest]
    set_state = [r for r in jobmojito_sandbox.requests_log() if r["path"].endswith("set-state")]
    assert len(set_state) == 3  # two 503s, then the change
