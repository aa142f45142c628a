"""The sync client over real HTTP to the sandbox: backoff, sign-in and typed errors.

The client is built here from its parts, as an async client would reuse them: settings, the token
provider and a transport. Waits are recorded instead of slept, and jitter is its upper bound, so
the backoff schedule is asserted exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests

from airflow_provider_jobmojito.auth import SIGN_IN_CACHE, TokenProvider
from airflow_provider_jobmojito.client import JobMojitoClient
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoUnavailableError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.retry import RetryPolicy
from airflow_provider_jobmojito.sandbox import SandboxServer
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.transport import RequestsTransport

POSITION = "6d8f0b2c-4e5a-4b7c-9d0e-1f2a3b4c5d6e"
SET_STATE = "/functions/v1/job-interview-set-state"
SIGN_IN = "/auth/v1/token"
EMAIL, PASSWORD = "client@example.com", "client-password-0123"


def client_for(api_url: str, *, password: str, login: str = "") -> tuple[JobMojitoClient, list[float]]:
    """A client of the sandbox whose retries record their waits (in the list returned) instead of
    sleeping."""
    settings = HookSettings.resolve(host=api_url, login=login, password=password, extras={}, overrides={})
    policy = RetryPolicy(5, 0.5, 30.0, jitter=lambda low, high: high)
    settings = dataclasses.replace(settings, retry=policy)
    client = JobMojitoClient(
        settings, TokenProvider(settings, "test"), RequestsTransport(requests.Session()), log=_Log()
    )
    waits: list[float] = []

    def wait(seconds: float, stop: Any) -> bool:
        waits.append(seconds)
        return False

    client.wait = wait
    return client, waits


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def _add(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    info = warning = error = _add


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    return jobmojito_sandbox


def test_backs_off_exponentially_between_attempts_and_logs_each_retry(sandbox: Any) -> None:
    client, waits = client_for(sandbox.api_url, password=sandbox.issue_token())
    sandbox.add_fault("status", status=503, count=3, path=SET_STATE)
    answer = client.call(
        "POST", "job-interview-set-state", json={"position_id": POSITION, "status": "active"}
    )
    assert answer == {"success": True}
    assert waits == [0.5, 1.0, 2.0]
    assert client.log.lines[0].endswith("answered 503 (attempt 1 of 6); retrying in 0.50 s.")
    assert sandbox.position(POSITION)["status"] == "active"


def test_max_retries_per_call_overrides_the_connections(sandbox: Any) -> None:
    client, waits = client_for(sandbox.api_url, password=sandbox.issue_token())
    sandbox.add_fault("status", status=502, count=5)
    with pytest.raises(JobMojitoUnavailableError, match="gave up after 2 attempt"):
        client.call("GET", "merchant-interview-list", params={"limit": 1}, max_retries=1)
    assert waits == [0.5]


def test_a_final_error_answer_is_typed_and_not_retried(sandbox: Any) -> None:
    client, waits = client_for(sandbox.api_url, password=sandbox.issue_token())
    sandbox.add_fault("status", status=422, body={"error": "Bad status.", "name": "status"}, path=SET_STATE)
    with pytest.raises(JobMojitoValidationError) as raised:
        client.call("POST", "job-interview-set-state", json={"position_id": POSITION, "status": "active"})
    assert (raised.value.status_code, raised.value.field) == (422, "status")
    assert waits == []


def test_signs_in_once_and_again_once_after_a_401() -> None:
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        client, _ = client_for(server.api_url, login=EMAIL, password=PASSWORD)
        client.call("GET", "job-interview-get", params={"position_id": POSITION})
        server.add_fault("status", status=401, count=1, path="/functions/v1/job-interview-get")
        client.call("GET", "job-interview-get", params={"position_id": POSITION})
        paths = [r["path"] for r in server.requests_log()]
        assert paths.count(SIGN_IN) == 2
        assert any("signing in again" in line for line in client.log.lines)


def test_refused_credentials_are_an_auth_error_without_retries() -> None:
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        client, _ = client_for(server.api_url, login=EMAIL, password="wrong")
        with pytest.raises(JobMojitoAuthError, match="was refused"):
            client.call("GET", "merchant-interview-list")
        assert [r["path"] for r in server.requests_log()] == [SIGN_IN]
        assert SIGN_IN_CACHE.get(SIGN_IN_CACHE.key(client.settings.supabase_url, EMAIL, "wrong")) is None
