"""The sync driver over real HTTP to the sandbox: it carries out the plans, and decides nothing.

Backoff, sign-in and typed errors are the plans' (tests/test_plan.py); here they are seen through
the requests transport, end to end.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from airflow_provider_jobmojito.auth import SIGN_IN_CACHE
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoUnavailableError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.plan import Blocking, Emit, Exclusive
from airflow_provider_jobmojito.sandbox import SandboxServer
from airflow_provider_jobmojito.validation import StateChange
from tests.drivers import endpoints_for, log_of, sync_client

POSITION = "6d8f0b2c-4e5a-4b7c-9d0e-1f2a3b4c5d6e"
SET_STATE = "/functions/v1/job-interview-set-state"
SIGN_IN = "/auth/v1/token"
EMAIL, PASSWORD = "client@example.com", "client-password-0123"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    return jobmojito_sandbox


def test_backs_off_exponentially_between_attempts_and_logs_each_retry(sandbox: Any) -> None:
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token())
    client, waits = sync_client()
    sandbox.add_fault("status", status=503, count=3, path=SET_STATE)
    answer = client.run(endpoints.set_state(StateChange.build(POSITION, "active")))
    assert answer == {"success": True}
    assert waits == [0.5, 1.0, 2.0]
    assert log_of(endpoints).lines[0].endswith("answered 503 (attempt 1 of 6); retrying in 0.50 s.")
    assert sandbox.position(POSITION)["status"] == "active"


def test_max_retries_per_call_overrides_the_connections(sandbox: Any) -> None:
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token())
    client, waits = sync_client()
    sandbox.add_fault("status", status=502, count=5)
    plan = endpoints.calls.call("GET", "merchant-interview-list", params={"limit": 1}, max_retries=1)
    with pytest.raises(JobMojitoUnavailableError, match="gave up after 2 attempt"):
        client.run(plan)
    assert waits == [0.5]


def test_a_final_error_answer_is_typed_and_not_retried(sandbox: Any) -> None:
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token())
    client, waits = sync_client()
    sandbox.add_fault("status", status=422, body={"error": "Bad status.", "name": "status"}, path=SET_STATE)
    with pytest.raises(JobMojitoValidationError) as raised:
        client.run(endpoints.set_state(StateChange.build(POSITION, "active")))
    assert (raised.value.status_code, raised.value.field) == (422, "status")
    assert waits == []


def test_signs_in_once_and_again_once_after_a_401() -> None:
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        endpoints = endpoints_for(server.api_url, login=EMAIL, password=PASSWORD)
        client, _ = sync_client()
        client.run(endpoints.get_position(POSITION))
        server.add_fault("status", status=401, count=1, path="/functions/v1/job-interview-get")
        client.run(endpoints.get_position(POSITION))
        paths = [r["path"] for r in server.requests_log()]
        assert paths.count(SIGN_IN) == 2
        assert any("signing in again" in line for line in log_of(endpoints).lines)


def test_refused_credentials_are_an_auth_error_without_retries() -> None:
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        endpoints = endpoints_for(server.api_url, login=EMAIL, password="wrong")
        client, _ = sync_client()
        with pytest.raises(JobMojitoAuthError, match="was refused"):
            client.run(endpoints.list_positions())
        assert [r["path"] for r in server.requests_log()] == [SIGN_IN]
        assert SIGN_IN_CACHE.get(SIGN_IN_CACHE.key(server.url, EMAIL, "wrong")) is None


def test_a_signing_key_in_an_answer_goes_to_on_secret_before_the_answer_is_returned(sandbox: Any) -> None:
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token())
    client, _ = sync_client()
    registered: list[str] = []
    answer = client.run(
        endpoints.set_state(StateChange.build(POSITION, None, True)), on_secret=registered.append
    )
    assert registered == [answer["embed_signing_key"]]


def test_pages_are_handed_over_one_at_a_time_as_they_are_asked_for(sandbox: Any) -> None:
    sandbox.seed([{"id": str(uuid.uuid4()), "status": "active"} for _ in range(5)])
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token())
    client, _ = sync_client()
    pages = client.pages(endpoints.positions_pages(page_size=2))
    first = next(pages)
    assert len(first["data"]) == 2
    assert sandbox.requests_log()[-1]["query"]["offset"] == "0"  # nothing read ahead
    rest = list(pages)
    assert [len(page["data"]) for page in rest] == [2, 2]  # 6 positions in all


def test_an_exclusive_step_holds_its_locks_while_its_plan_runs() -> None:
    client, _ = sync_client()
    lock = threading.Lock()
    seen: list[bool] = []

    def inner() -> Any:
        seen.append((yield Blocking(lock.locked)))
        return "inner result"

    def plan() -> Any:
        result = yield Exclusive("account", lambda: lock, inner())
        seen.append(lock.locked())
        return result

    assert client.run(plan()) == "inner result"
    assert seen == [True, False]


def test_an_emit_in_a_plan_run_for_its_result_is_passed_over() -> None:
    client, _ = sync_client()

    def plan() -> Any:
        yield Emit("page")
        return "done"

    assert client.run(plan()) == "done"
