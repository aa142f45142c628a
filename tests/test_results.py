"""Reading a window of interview results over HTTP (the sandbox): each result in the window once,
whatever moves under the read, in bounded paging; bad arguments refused before any request."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from airflow_provider_jobmojito import masking
from airflow_provider_jobmojito.exceptions import JobMojitoUnexpectedAnswerError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.results import MAX_STEP_BACKS
from airflow_provider_jobmojito.sandbox import ManualClock, SandboxServer

LIST_PATH = "/functions/v1/merchant-result-list"
DETAILS_PATH = "/functions/v1/job-interview-details"
START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    """The sandbox's clock: two hours after the seeded history, moved only by the test."""
    return ManualClock((START + 2 * HOUR).timestamp())


@pytest.fixture
def sandbox(jobmojito_sandbox_factory: Any, clock: ManualClock) -> SandboxServer:
    server: SandboxServer = jobmojito_sandbox_factory(clock=clock)
    return server


@pytest.fixture
def hook(sandbox: SandboxServer, jobmojito_conn: Any) -> JobMojitoHook:
    return JobMojitoHook(jobmojito_conn("results", host=sandbox.api_url, password=sandbox.issue_token()))


def seed_hour(sandbox: SandboxServer, count: int, **change: Any) -> set[str]:
    """``count`` results stamped evenly over the first hour; their ids."""
    created = sandbox.change_results(create=count, at=START.isoformat(), spread_seconds=3600, **change)
    return set(created["created"])


def list_calls(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [entry for entry in sandbox.requests_log() if entry["path"] == LIST_PATH]


def add_fault(sandbox: SandboxServer, **spec: Any) -> None:
    """Queue a fault through the sandbox's fault API."""
    answer = requests.post(f"{sandbox.url}/_sandbox/faults", json=spec, timeout=5)
    assert answer.status_code == 200, answer.text


def test_every_result_of_the_window_is_given_once_in_the_fewest_list_calls(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seeded = seed_hour(sandbox, 5000)
    rows = list(hook.iter_results(updated_after=START, updated_before=START + HOUR))
    assert Counter(row["id"] for row in rows) == Counter(seeded)
    # Overlap of two rows a page: ceil(5000 / 998) calls, newest first.
    assert len(list_calls(sandbox)) == 6
    stamps = [row["updated_at"] for row in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert all(call["query"]["order_by"] == "updated_at_newest" for call in list_calls(sandbox))


def test_rows_updated_and_created_between_pages_leave_each_result_of_the_window_given_once(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seeded = seed_hour(sandbox, 3000)
    # Before the second page, 200 results are updated (the least recently updated: not yet read)
    # and 40 created: rows move to the front and every offset shifts under the read.
    add_fault(
        sandbox,
        kind="results",
        update_results=200,
        create_results=40,
        path=LIST_PATH,
        query={"offset": "998"},
    )
    window = {"updated_after": START, "updated_before": START + HOUR}
    first = list(hook.iter_results(**window))
    assert [entry["fault"] for entry in list_calls(sandbox)][1] == "results"
    moved = {row["id"] for row in hook.iter_results(updated_after=START + HOUR)}
    assert len(moved) == 240
    counted = Counter(row["id"] for row in first)
    assert max(counted.values()) == 1
    # Each result is in the window of its latest update: the first holds every seeded result
    # that did not move; the moved ones are all in the next window.
    assert set(counted) == seeded - moved
    assert set(counted) | moved == seeded | moved


def test_a_page_that_skipped_rows_is_read_again_from_further_back(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seeded = seed_hour(sandbox, 250)
    token = sandbox.issue_token()
    listing = requests.get(
        f"{sandbox.api_url}/merchant-result-list",
        params={"order_by": "updated_at_newest", "limit": 100, "offset": 103},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    # The second page as a list that lost five rows before it would give it (rows moved up).
    add_fault(sandbox, kind="answer", body=listing, path=LIST_PATH, query={"offset": "98"})
    sandbox.clear_requests()
    rows = list(hook.iter_results(updated_after=START, updated_before=START + HOUR, page_size=100))
    assert Counter(row["id"] for row in rows) == Counter(seeded)
    offsets = [int(call["query"]["offset"]) for call in list_calls(sandbox)]
    assert offsets[:3] == [0, 98, 88]


def test_a_list_that_keeps_saying_has_more_with_the_same_page_stops_with_an_error(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seed_hour(sandbox, 10)
    token = sandbox.issue_token()
    page = requests.get(
        f"{sandbox.api_url}/merchant-result-list",
        params={"order_by": "updated_at_newest", "limit": 10},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    page["pagination"].update(has_more=True, total=10_000_000)
    add_fault(sandbox, kind="answer", body=page, path=LIST_PATH, count=1000)
    sandbox.clear_requests()
    with pytest.raises(JobMojitoUnexpectedAnswerError, match="has_more"):
        list(hook.iter_results(updated_after=START, page_size=10))
    assert len(list_calls(sandbox)) <= 3


def test_a_list_that_keeps_moving_rows_up_stops_within_a_bounded_number_of_calls(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seed_hour(sandbox, 30)
    token = sandbox.issue_token()
    tail = requests.get(
        f"{sandbox.api_url}/merchant-result-list",
        params={"order_by": "updated_at_newest", "limit": 10, "offset": 20},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    tail["pagination"].update(has_more=True)
    # Every page after the first starts older than the first page ended: rows always moved up.
    for offset in range(1, 9):
        add_fault(sandbox, kind="answer", body=tail, path=LIST_PATH, query={"offset": str(offset)}, count=100)
    sandbox.clear_requests()
    with pytest.raises(JobMojitoUnexpectedAnswerError, match="stopped paging"):
        list(hook.iter_results(updated_after=START, page_size=10))
    assert len(list_calls(sandbox)) <= MAX_STEP_BACKS + 2


def test_an_empty_page_ends_the_read_whatever_has_more_says(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    add_fault(
        sandbox,
        kind="answer",
        body={"data": [], "pagination": {"total": 5, "limit": 1000, "offset": 0, "has_more": True}},
        path=LIST_PATH,
    )
    assert list(hook.iter_results(updated_after=START)) == []
    assert len(list_calls(sandbox)) == 1


def test_test_results_are_left_out_unless_asked_for(sandbox: SandboxServer, hook: JobMojitoHook) -> None:
    real = seed_hour(sandbox, 30)
    tests = seed_hour(sandbox, 5, is_test=True)
    window = {"updated_after": START, "updated_before": START + HOUR}
    assert {row["id"] for row in hook.iter_results(**window)} == real
    assert {row["id"] for row in hook.iter_results(**window, include_test=True)} == real | tests


def test_filters_reach_the_list_and_several_types_are_read_in_turn(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    interviews = seed_hour(sandbox, 20)
    assessments = seed_hour(sandbox, 7, type="assessment")
    rows = list(hook.iter_results(updated_after=START, type=["interview", "assessment"], step="interview"))
    assert {row["id"] for row in rows} == interviews | assessments
    assert [call["query"]["type"] for call in list_calls(sandbox)] == ["interview", "assessment"]
    assert all(call["query"]["step"] == "interview" for call in list_calls(sandbox))


def test_the_async_read_gives_what_the_sync_read_gives(sandbox: SandboxServer, hook: JobMojitoHook) -> None:
    seed_hour(sandbox, 2100)
    window = {"updated_after": START, "updated_before": START + HOUR}

    async def read() -> list[dict[str, Any]]:
        return [row async for row in hook.aiter_results(**window)]

    assert asyncio.run(read()) == list(hook.iter_results(**window))


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"updated_after": datetime(2026, 1, 1)}, "updated_after"),  # naive
        ({"updated_after": "2026-01-01"}, "updated_after"),
        ({"updated_after": START, "updated_before": START}, "updated_before"),
        ({"updated_after": START, "include_test": "yes"}, "include_test"),
        ({"updated_after": START, "page_size": 1}, "page_size"),
        ({"updated_after": START, "order_by": "score"}, "order_by"),
        ({"updated_after": START, "offset": 5}, "offset"),
        ({"updated_after": START, "type": "webinar"}, "type"),
        ({"updated_after": START, "tab": "maybe"}, "tab"),
        ({"updated_after": START, "interview_id": "not-a-uuid"}, "interview_id"),
        ({"updated_after": START, "with_details": 1}, "with_details"),
        ({"updated_after": START, "signed_recordings": True}, "signed_recordings"),
        ({"updated_after": START, "with_details": True, "detail_workers": 0}, "detail_workers"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter_before_any_request(
    sandbox: SandboxServer, hook: JobMojitoHook, arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        hook.iter_results(**arguments)
    with pytest.raises(ValueError, match=named):
        hook.aiter_results(**arguments)
    assert sandbox.requests_log() == []


def test_details_come_with_each_result_and_signed_recording_urls_are_masked(
    sandbox: SandboxServer, hook: JobMojitoHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_hour(sandbox, 12)
    masked: list[str] = []
    real_mask = masking.mask_secret
    monkeypatch.setattr(masking, "mask_secret", lambda s, *a, **k: (masked.append(s), real_mask(s))[1])
    plain = list(hook.iter_results(updated_after=START, with_details=True, detail_workers=3))
    assert {row["id"] for row in plain} == seeded
    assert all(isinstance(row["details"]["transcript"], list) for row in plain)
    assert all(row["details"]["recording_url"] is None for row in plain)
    assert [secret for secret in masked if secret.startswith("https://")] == []
    signed = list(hook.iter_results(updated_after=START, with_details=True, signed_recordings=True))
    urls = [row["details"]["recording_url"] for row in signed]
    assert len(urls) == 12
    assert set(urls) <= set(masked)
    details_calls = [e for e in sandbox.requests_log() if e["path"] == DETAILS_PATH]
    assert len(details_calls) == 24


def test_details_fetching_stops_retrying_once_the_api_is_plainly_down(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    from airflow_provider_jobmojito.exceptions import JobMojitoUnavailableError

    seed_hour(sandbox, 40)
    add_fault(sandbox, kind="status", status=503, path=DETAILS_PATH, count=10_000)
    with pytest.raises(JobMojitoUnavailableError):
        list(hook.iter_results(updated_after=START, with_details=True, detail_workers=4))
    details_calls = [e for e in sandbox.requests_log() if e["path"] == DETAILS_PATH]
    # The breaker (10 failures in a row) stops the others' retries: far fewer than 40 results x 6 attempts.
    assert len(details_calls) < 40


def test_a_list_that_moved_up_under_a_small_page_is_read_again_from_further_back(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seeded = seed_hour(sandbox, 25)
    token = sandbox.issue_token()
    listing = requests.get(
        f"{sandbox.api_url}/merchant-result-list",
        params={"order_by": "updated_at_newest", "limit": 5, "offset": 5},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    # Offset 3 keeps answering as a list that lost two rows before it: only a step back helps,
    # however small the page (a tenth of a page of five rows is none).
    add_fault(sandbox, kind="answer", body=listing, path=LIST_PATH, query={"offset": "3"}, count=100)
    sandbox.clear_requests()
    rows = list(hook.iter_results(updated_after=START, updated_before=START + HOUR, page_size=5))
    assert Counter(row["id"] for row in rows) == Counter(seeded)
    offsets = [int(call["query"]["offset"]) for call in list_calls(sandbox)]
    assert offsets[:3] == [0, 3, 2]


def test_a_list_that_shrank_below_the_next_offset_is_read_again_from_further_back(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    seeded = seed_hour(sandbox, 300)
    rows = hook.iter_results(
        updated_after=START, updated_before=START + HOUR, page_size=100, tab="incomplete"
    )
    given: list[str] = []
    for row in rows:
        given.append(row["id"])
        if len(given) == 200:
            # Decided while the read runs: 190 results already given leave the "incomplete" tab,
            # so the list now ends before the next page's offset (an empty page, not the end).
            sandbox.change_results(ids=given[:190])
    assert Counter(given) == Counter(seeded)


def test_a_page_read_again_after_a_step_back_may_be_the_previous_page_without_ending_the_read(
    sandbox: SandboxServer, hook: JobMojitoHook
) -> None:
    # Stamped at one instant (a bulk change): pages overlap by half a page.
    created = sandbox.change_results(create=35, at=START.isoformat())["created"]
    rows = hook.iter_results(updated_after=START, updated_before=START + HOUR, page_size=10, tab="incomplete")
    given: list[str] = []
    for row in rows:
        given.append(row["id"])
        if len(given) == 29:
            # Twenty results given leave the tab: stepping back lands exactly on the rows of the
            # page before, legitimately, not a list answering the same page for every offset.
            sandbox.change_results(ids=given[:20])
    assert Counter(given) == Counter(created)


@pytest.mark.parametrize("faced", ["sync", "async"])
def test_a_result_without_an_interview_result_id_comes_without_details_and_the_read_goes_on(
    sandbox: SandboxServer, hook: JobMojitoHook, faced: str
) -> None:
    seeded = seed_hour(sandbox, 5)
    token = sandbox.issue_token()
    page = requests.get(
        f"{sandbox.api_url}/merchant-result-list",
        params={"order_by": "updated_at_newest", "limit": 1000, "offset": 0},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    # The contract lets interview_result_id be null (a result with no interview part, only a
    # pre-screening): there are no details to fetch for it.
    page["data"][2]["interview_result_id"] = None
    add_fault(sandbox, kind="answer", body=page, path=LIST_PATH)
    arguments: dict[str, Any] = {"updated_after": START, "with_details": True}
    if faced == "sync":
        rows = list(hook.iter_results(**arguments))
    else:

        async def read() -> list[dict[str, Any]]:
            return [row async for row in hook.aiter_results(**arguments)]

        rows = asyncio.run(read())
    assert {row["id"] for row in rows} == seeded
    assert [row["details"] is None for row in rows] == [False, False, True, False, False]
    details_calls = [e for e in sandbox.requests_log() if e["path"] == DETAILS_PATH]
    assert len(details_calls) == 4
