"""The sandbox's interview results: listed, ordered and filtered as the contract says, details for
each, created and updated over time through the control API and the ``results`` fault."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from airflow_provider_jobmojito.sandbox import ManualClock, SandboxServer

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START.timestamp() + 7200)


@pytest.fixture
def sandbox(jobmojito_sandbox_factory: Any, clock: ManualClock) -> SandboxServer:
    server: SandboxServer = jobmojito_sandbox_factory(clock=clock)
    return server


def get(sandbox: SandboxServer, path: str, **params: Any) -> requests.Response:
    token = sandbox.issue_token()
    return requests.get(
        f"{sandbox.api_url}/{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def control(sandbox: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{sandbox.url}/_sandbox/results", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_results_are_created_over_time_and_an_update_moves_one_to_the_front(
    sandbox: SandboxServer, clock: ManualClock
) -> None:
    created = control(sandbox, {"create": 3})["created"]
    clock.advance(1)
    control(sandbox, {"create": 2})
    clock.advance(1)
    assert control(sandbox, {"ids": [created[0]]})["updated"] == [created[0]]
    page = get(sandbox, "merchant-result-list", order_by="updated_at_newest", limit=10).json()
    rows = page["data"]
    assert rows[0]["id"] == created[0]
    assert rows[0]["updated_at"] > rows[0]["created_at"]
    assert [row["updated_at"] for row in rows] == sorted((row["updated_at"] for row in rows), reverse=True)
    assert page["pagination"] == {"total": 5, "limit": 10, "offset": 0, "has_more": False}
    # The least recently updated first when no ids are given.
    assert control(sandbox, {"update": 1})["updated"] == [created[1]]


def test_the_list_orders_pages_and_bounds_as_the_contract_says(sandbox: SandboxServer) -> None:
    control(sandbox, {"create": 30, "at": "2026-01-01T00:00:00Z", "spread_seconds": 30})
    default = get(sandbox, "merchant-result-list").json()
    assert default["pagination"] == {"total": 30, "limit": 50, "offset": 0, "has_more": False}
    newest = [row["created_at"] for row in default["data"]]
    assert newest == sorted(newest, reverse=True)
    oldest = get(sandbox, "merchant-result-list", order_by="created_at_oldest", limit=5, offset=5).json()
    assert [row["created_at"] for row in oldest["data"]] == sorted(newest)[5:10]
    assert oldest["pagination"]["has_more"] is True
    for params in ({"limit": 1001}, {"limit": 0}, {"offset": -1}, {"order_by": "name"}, {"type": "webinar"}):
        answer = get(sandbox, "merchant-result-list", **params)
        assert answer.status_code == 422
        assert answer.json()["name"] == next(iter(params))
    assert len(get(sandbox, "merchant-result-list", limit=1000).json()["data"]) == 30


def test_the_list_filters_by_type_interview_tab_and_text(sandbox: SandboxServer) -> None:
    other = "0c0ffee0-0000-4000-8000-000000000002"
    control(sandbox, {"create": 4})
    control(sandbox, {"create": 3, "definition_id": other})
    control(sandbox, {"create": 2, "type": "assessment"})
    assert get(sandbox, "merchant-result-list").json()["pagination"]["total"] == 7
    assert get(sandbox, "merchant-result-list", type="assessment").json()["pagination"]["total"] == 2
    assert get(sandbox, "merchant-result-list", interview_id=other).json()["pagination"]["total"] == 3
    # New results are started, not completed: in the incomplete tab until updated.
    assert get(sandbox, "merchant-result-list", tab="incomplete").json()["pagination"]["total"] == 7
    assert get(sandbox, "merchant-result-list", step="pre-screening").json()["pagination"]["total"] == 0
    row = get(sandbox, "merchant-result-list", limit=1).json()["data"][0]
    found = get(sandbox, "merchant-result-list", filter_text=row["candidate_email"].upper()).json()["data"]
    assert [r["id"] for r in found] == [row["id"]]


def test_each_result_has_details_and_signed_recordings_only_when_asked(sandbox: SandboxServer) -> None:
    control(sandbox, {"create": 1})
    row = get(sandbox, "merchant-result-list").json()["data"][0]
    details = get(sandbox, "job-interview-details", interview_result_id=row["interview_result_id"]).json()
    assert details["recording_url"] is None
    assert details["transcript"]
    signed = get(
        sandbox,
        "job-interview-details",
        interview_result_id=row["interview_result_id"],
        get_signed_recordings="true",
    ).json()
    assert "token=" in signed["recording_url"]
    unknown = get(
        sandbox, "job-interview-details", interview_result_id="00000000-0000-4000-8000-000000000000"
    )
    assert unknown.status_code == 404
    assert get(sandbox, "job-interview-details").status_code == 422


def test_a_results_fault_changes_results_just_before_the_request_it_meets(sandbox: SandboxServer) -> None:
    control(sandbox, {"create": 10, "at": "2026-01-01T00:00:00Z", "spread_seconds": 10})
    fault = {
        "kind": "results",
        "update_results": 2,
        "create_results": 1,
        "path": "/functions/v1/merchant-result-list",
        "query": {"offset": "5"},
    }
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json=fault, timeout=5).status_code == 200
    before = get(sandbox, "merchant-result-list", order_by="updated_at_newest", limit=5).json()
    after = get(sandbox, "merchant-result-list", order_by="updated_at_newest", limit=5, offset=5).json()
    assert after["pagination"]["total"] == 11
    # Three rows went to the front, so the second page re-sees the first page's last three.
    assert [row["id"] for row in after["data"][:3]] == [row["id"] for row in before["data"][2:]]
    bad = {**fault, "update_results": -1}
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json=bad, timeout=5).status_code == 422


def test_bad_admin_changes_are_refused_naming_the_field(sandbox: SandboxServer) -> None:
    for body, name in (
        ({"create": -1}, "create"),
        ({"create": 1, "type": "webinar"}, "type"),
        ({"ids": ["00000000-0000-4000-8000-000000000000"]}, "ids"),
        ({"create": 1, "at": "yesterday"}, "at"),
        ({"bogus": 1}, "bogus"),
    ):
        answer = requests.post(f"{sandbox.url}/_sandbox/results", json=body, timeout=5)
        assert answer.status_code == 422
        assert answer.json()["name"] == name


def test_a_reset_forgets_results(sandbox: SandboxServer) -> None:
    control(sandbox, {"create": 3})
    assert requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5).status_code == 200
    assert get(sandbox, "merchant-result-list").json()["pagination"]["total"] == 0
