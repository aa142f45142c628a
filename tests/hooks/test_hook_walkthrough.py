"""The hook's walkthrough in the documentation (docs/hook.md and docs/bulk.md include the lines
between the markers): each call, run against the sandbox, does and returns what the page says."""

from __future__ import annotations

from typing import Any

from airflow_provider_jobmojito.bulk import StateChangeResult

POSITION = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"
CLOSED = [
    "9b1d3c52-7e0a-4f7b-8c55-2a1e6d4b0f10",
    "5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d",
    "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
]


def test_each_call_of_the_walkthrough_does_what_its_comment_says(
    jobmojito_sandbox: Any, jobmojito_conn: Any
) -> None:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "active"}])
    jobmojito_conn()
    position_id = POSITION
    # [START howto_hook]
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    hook = JobMojitoHook()  # jobmojito_conn_id="jobmojito_default"
    changed = hook.set_interview_state(position_id, status="archived")  # {"success": True}
    keys = hook.enable_embedding(position_id)  # {"embed_id": ..., "embed_signing_key": ...}
    url = hook.embed_url(keys["embed_id"])  # https://try.interviewmojito.com/embed?embed_id=...
    hook.disable_embedding(position_id)  # deletes the embed keys
    position = hook.get_interview(position_id)  # GET job-interview-get: {"id", "status", ...}
    page = hook.list_interviews(status="archived", limit=100)  # GET merchant-interview-list
    # page: {"data": [...], "pagination": {"total", "limit", "offset", "has_more"}}
    # [END howto_hook]

    assert changed == {"success": True}
    assert set(keys) == {"embed_id", "embed_signing_key"}
    assert url == f"https://try.interviewmojito.com/embed?embed_id={keys['embed_id']}"
    stored = jobmojito_sandbox.position(POSITION)
    assert (stored["status"], stored["embed_id"]) == ("archived", None)
    assert (position["id"], position["status"]) == (POSITION, "archived")
    assert [row["id"] for row in page["data"]] == [POSITION]
    assert set(page["pagination"]) == {"total", "limit", "offset", "has_more"}


def test_one_bulk_call_archives_every_position_and_reports_each(
    jobmojito_sandbox: Any, jobmojito_conn: Any
) -> None:
    jobmojito_sandbox.seed([{"id": position, "status": "active"} for position in CLOSED])
    jobmojito_conn()
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    hook = JobMojitoHook()
    position_ids = CLOSED
    # [START howto_hook_bulk]
    results = hook.set_interview_states(position_ids, status="archived", max_workers=16)
    # [END howto_hook_bulk]

    assert all(isinstance(result, StateChangeResult) for result in results)
    assert [(result.position_id, result.ok) for result in results] == [(p, True) for p in CLOSED]
    assert [jobmojito_sandbox.position(p)["status"] for p in CLOSED] == ["archived"] * 3
