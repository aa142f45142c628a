"""InterviewResultChangeTrigger over HTTP (the sandbox): one event per poll that found new or
updated results, nothing at the start, one shared poll per connection on Airflow 3.3, restarts
from the watermark. Polls advance when the test says (the trigger's sleep is replaced)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import AIRFLOW_V3, AIRFLOW_VERSION
from tests.triggers.test_jobmojito import MemoryStore, rebuilt, until

pytestmark = pytest.mark.skipif(not AIRFLOW_V3, reason="BaseEventTrigger and AssetWatcher need Airflow 3")

LIST_PATH = "/functions/v1/merchant-result-list"
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def seeded(jobmojito_sandbox: Any, jobmojito_conn: Any) -> list[str]:
    """Twenty results of the past; the default connection aims at the sandbox."""
    jobmojito_conn()
    created: list[str] = jobmojito_sandbox.change_results(create=20, at=START.isoformat(), spread_seconds=60)[
        "created"
    ]
    return created


class Script:
    """Replaces the trigger's wait between polls: each wait runs the next step (a change in the
    sandbox) and returns, so the next poll sees it; with no step left, it waits for ever."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, steps: list[Callable[[], Any]]) -> None:
        from airflow_provider_jobmojito.triggers.results import InterviewResultChangeTrigger

        self.steps = list(steps)

        async def sleep(_seconds: float) -> None:
            if self.steps:
                self.steps.pop(0)()
                return
            await asyncio.Event().wait()

        monkeypatch.setattr(InterviewResultChangeTrigger, "sleep", staticmethod(sleep))


def watcher(**kwargs: Any) -> Any:
    from airflow_provider_jobmojito.triggers.results import InterviewResultChangeTrigger

    return rebuilt(InterviewResultChangeTrigger(**{"poll_interval": 1, **kwargs}))


async def events(stream: Any, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events' payloads; the stream is closed after."""
    found: list[dict[str, Any]] = []
    async with contextlib.aclosing(stream) as each:
        async for event in each:
            found.append(dict(event.payload))
            if len(found) == count:
                break
    return found


def list_calls(sandbox: Any) -> int:
    return sum(1 for entry in sandbox.requests_log() if entry["path"] == LIST_PATH)


def test_fires_once_per_poll_that_found_new_or_updated_results_and_never_for_the_start(
    jobmojito_sandbox: Any, seeded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    Script(
        monkeypatch,
        [
            lambda: created.extend(jobmojito_sandbox.change_results(create=3)["created"]),
            lambda: None,  # an idle poll: no event
            lambda: jobmojito_sandbox.change_results(ids=[seeded[0]]),
        ],
    )
    first, second = asyncio.run(asyncio.wait_for(events(watcher().run(), 2), 60))
    assert set(first["ids"]) == set(created)
    assert first["count"] == 3
    assert len(first["interview_result_ids"]) == 3
    assert second["ids"] == [seeded[0]]
    # The start (one call), then one read a poll: the event-less poll too.
    assert list_calls(jobmojito_sandbox) == 4


def test_test_results_fire_only_when_asked_for(
    jobmojito_sandbox: Any, seeded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real: list[str] = []
    Script(
        monkeypatch,
        [
            lambda: jobmojito_sandbox.change_results(create=2, is_test=True),
            lambda: real.extend(jobmojito_sandbox.change_results(create=1)["created"]),
        ],
    )
    [event] = asyncio.run(asyncio.wait_for(events(watcher().run(), 1), 60))
    assert event["ids"] == real


@pytest.mark.skipif(
    (AIRFLOW_VERSION.major, AIRFLOW_VERSION.minor) < (3, 3), reason="shared streams are new in Airflow 3.3"
)
def test_watches_of_one_connection_share_one_poll_through_airflows_shared_streams(
    jobmojito_sandbox: Any, seeded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.triggers.shared_stream import SharedStreamManager

    created: list[str] = []
    Script(monkeypatch, [lambda: created.extend(jobmojito_sandbox.change_results(create=2)["created"])])
    first, second, other = watcher(), watcher(), watcher(poll_interval=2)
    assert first.shared_stream_key() == second.shared_stream_key() != other.shared_stream_key()

    async def scenario() -> list[list[dict[str, Any]]]:
        manager = SharedStreamManager()
        try:
            streams = [
                trigger.filter_shared_stream(
                    manager.subscribe(trigger_id=number, trigger=trigger, key=trigger.shared_stream_key())
                )
                for number, trigger in enumerate((first, second))
            ]
            return list(await asyncio.gather(*(events(stream, 1) for stream in streams)))
        finally:
            await manager.stop_all()

    [[one], [two]] = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert set(one["ids"]) == set(two["ids"]) == set(created)
    # One start and one poll for both watches.
    assert list_calls(jobmojito_sandbox) == 2


def test_a_restarted_watch_fires_what_changed_while_it_was_down_once_and_nothing_older(
    jobmojito_sandbox: Any, seeded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    before: list[str] = []
    Script(
        monkeypatch,
        [
            lambda: before.extend(jobmojito_sandbox.change_results(create=2)["created"]),
            lambda: None,  # the poll after the event: its watermark is stored now
        ],
    )
    up = watcher()
    up.asset_state_store = store

    async def until_stored() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with contextlib.aclosing(up.run()) as each:
            async for event in each:
                found.append(dict(event.payload))
                break
            # Run on to the next poll, which stores the watermark, then the watch goes down.
            waiting = asyncio.ensure_future(anext(each))
            await until(lambda: bool(store.values))
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        return found

    [fired] = asyncio.run(asyncio.wait_for(until_stored(), 60))
    assert set(fired["ids"]) == set(before)
    # While the triggerer is down: results created, and one fired before updated again.
    while_down = jobmojito_sandbox.change_results(create=3, ids=[before[0]])
    changed = set(while_down["created"]) | {before[0]}
    Script(monkeypatch, [])
    again = watcher()
    again.asset_state_store = store
    [after_restart] = asyncio.run(asyncio.wait_for(events(again.run(), 1), 60))
    assert set(after_restart["ids"]) == changed
    assert after_restart["count"] == 4


def test_bad_arguments_are_refused_when_built(jobmojito_sandbox: Any) -> None:
    from airflow_provider_jobmojito.triggers.results import InterviewResultChangeTrigger

    for kwargs, named in (
        ({"include_test": "no"}, "include_test"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"filters": {"order_by": "score"}}, "order_by"),
    ):
        with pytest.raises(ValueError, match=named):
            InterviewResultChangeTrigger(**kwargs)
    assert jobmojito_sandbox.requests_log() == []


def test_a_watch_that_joins_a_running_shared_poll_late_fires_what_the_poll_fired_before_it_joined(
    jobmojito_sandbox: Any, seeded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a triggerer restart the watches of one key re-subscribe one by one: a late one misses
    # the events the shared poll broadcast before it joined (Airflow's shared-stream notes).
    from airflow.triggers.shared_stream import SharedStreamManager

    from airflow_provider_jobmojito.triggers.results import InterviewResultChangeTrigger, _Horizon

    joined = asyncio.Event()
    early: list[str] = []
    late: list[str] = []

    async def sleep(_seconds: float) -> None:
        if not early:
            early.extend(jobmojito_sandbox.change_results(create=2)["created"])
        elif not late:
            await joined.wait()
            late.extend(jobmojito_sandbox.change_results(create=3)["created"])
        else:
            await asyncio.Event().wait()

    monkeypatch.setattr(InterviewResultChangeTrigger, "sleep", staticmethod(sleep))
    first, second = watcher(), watcher()
    # The second watch's watermark from before the restart: past every seeded result.
    store = MemoryStore()
    store.values[second.watermark_key()] = _Horizon(START.replace(minute=5)).to_json()
    second.asset_state_store = store

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        manager = SharedStreamManager()
        try:
            key = first.shared_stream_key()
            one = await events(
                first.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=first, key=key)), 1
            )
            stream = second.filter_shared_stream(manager.subscribe(trigger_id=2, trigger=second, key=key))
            joined.set()
            return one, await events(stream, 1)
        finally:
            await manager.stop_all()

    [one], [two] = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert set(one["ids"]) == set(early)
    assert set(two["ids"]) == set(early) | set(late)


def test_a_watch_that_starts_on_an_empty_list_fires_the_first_results_whatever_the_api_clock_says(
    jobmojito_sandbox_factory: Any, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_jobmojito.sandbox import ManualClock

    # The API's clock is behind this machine's (here by months): its stamps, not this clock, count.
    sandbox = jobmojito_sandbox_factory(clock=ManualClock(START.timestamp()))
    conn_id = jobmojito_conn("results_empty_start", host=sandbox.api_url, password=sandbox.issue_token())
    created: list[str] = []
    Script(monkeypatch, [lambda: created.extend(sandbox.change_results(create=2)["created"])])
    [fired] = asyncio.run(asyncio.wait_for(events(watcher(jobmojito_conn_id=conn_id).run(), 1), 60))
    assert set(fired["ids"]) == set(created)
