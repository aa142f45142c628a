"""A connection's token rotated under a running triggerer (Airflow 3.3, LocalExecutor): the next
deferred sensor succeeds without a restart.

The default connection is an environment variable, fixed when the processes start; this test
makes a connection of its own in the metadata database with the CLI, as a user would, and rotates
it the way a user would: a new token in the connection (delete, then add), the old one revoked.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.deployment import RUN_TIMEOUT, Deployment, seconds_between, wait_for
from tests.e2e.read_side import WAIT_DAG, sensor_state

pytestmark = pytest.mark.e2e

ROTATING = "jobmojito_rotating"
BEFORE, AFTER = "6d1c9a3e-2b7f-4c8d-9e0a-1f2b3c4d5e6f", "4e5f6a7b-8c9d-4e0f-8a1b-2c3d4e5f6a7b"
LIST = "/functions/v1/merchant-interview-list"


def add_connection(deployment: Deployment, token: str) -> None:
    added = deployment.cli(
        "connections",
        "add",
        ROTATING,
        "--conn-type",
        "jobmojito",
        "--conn-host",
        f"{deployment.sandbox_url}/functions/v1",
        "--conn-password",
        token,
    )
    assert added.returncode == 0, added.stderr[-2000:]


def deferred_wait(deployment: Deployment, position_id: str) -> dict[str, Any]:
    """A deferred sensor on the rotating connection, released once the triggerer waits for it."""
    run_id = deployment.trigger(WAIT_DAG, {"position_id": position_id, "conn_id": ROTATING})
    wait_for("the sensor to defer", lambda: sensor_state(deployment, run_id) == "deferred", RUN_TIMEOUT, 0.5)
    deployment.sandbox("POST", f"/_sandbox/positions/{position_id}/status", json={"status": "draft"})
    run = deployment.wait_for_run(WAIT_DAG, run_id)
    assert run["state"] == "success", deployment.describe_run(WAIT_DAG, run_id)
    [ti] = deployment.task_instances(WAIT_DAG, run_id)
    assert ti["try_number"] == 1
    return run


def test_a_deferred_sensor_succeeds_after_its_connections_token_was_rotated_without_a_restart(
    deployment: Deployment, figures: dict[str, Any]
) -> None:
    deployment.sandbox(
        "POST",
        "/_sandbox/positions",
        json={"positions": [{"id": pid, "status": "preparing"} for pid in (BEFORE, AFTER)]},
    )
    old = deployment.mint_token()
    add_connection(deployment, old)
    triggerer = deployment.processes["triggerer"]
    first = deferred_wait(deployment, BEFORE)  # the triggerer has read the connection, with `old`

    new = deployment.mint_token()
    deleted = deployment.cli("connections", "delete", ROTATING)
    assert deleted.returncode == 0, deleted.stderr[-2000:]
    add_connection(deployment, new)
    deployment.sandbox("POST", "/_sandbox/tokens/revoke", json={"token": old})
    rotated = len(deployment.sandbox("GET", "/_sandbox/requests")["requests"])

    second = deferred_wait(deployment, AFTER)

    assert deployment.processes["triggerer"] is triggerer
    assert triggerer.poll() is None  # the same process throughout: no restart
    changed = [
        path.name
        for path in deployment.all_log_files()
        if f"Connection '{ROTATING}' has changed" in path.read_text(errors="replace")
    ]
    assert changed, "no log says the triggerer took the rotated connection"
    after = deployment.sandbox("GET", "/_sandbox/requests")["requests"][rotated:]
    deployment.timings["run jobmojito_e2e_wait on the rotating connection (before)"] = seconds_between(
        first["start_date"], first["end_date"]
    )
    deployment.timings["run jobmojito_e2e_wait on the rotating connection (after)"] = seconds_between(
        second["start_date"], second["end_date"]
    )
    figures["list calls refused (401) after the rotation"] = sum(
        1 for r in after if r["path"] == LIST and r["status"] == 401
    )
