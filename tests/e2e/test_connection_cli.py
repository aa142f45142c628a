"""``airflow connections test`` against the sandbox, as a user runs it (``[core] test_connection``)."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.deployment import Deployment

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("token_kind", "expected"),
    [
        ("valid", ["Connection success!"]),
        ("refused", ["Connection failed!", "Authentication failed", "401"]),
        ("expired", ["Connection failed!", "Authentication failed", "expired at"]),
    ],
)
def test_airflow_connections_test(deployment: Deployment, token_kind: str, expected: list[str]) -> None:
    if token_kind == "valid":
        token = deployment.mint_token()
    elif token_kind == "expired":
        token = deployment.mint_token(lifetime=-60)
    else:
        token = "not-a-jobmojito-token-" + "x" * 20  # opaque: sent as it is, and refused
    conn_id = f"jobmojito_e2e_{token_kind}"
    conn = {"conn_type": "jobmojito", "host": f"{deployment.sandbox_url}/functions/v1", "password": token}

    started = time.monotonic()
    result = deployment.cli(
        "connections",
        "test",
        conn_id,
        env={
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        },
    )
    deployment.timings[f"airflow connections test ({token_kind} token)"] = time.monotonic() - started

    output = result.stdout + result.stderr
    for text in expected:
        assert text in output, output[-3000:]
    assert (result.returncode == 0) == (token_kind == "valid"), output[-3000:]
    assert token not in output
