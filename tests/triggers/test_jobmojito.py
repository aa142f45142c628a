"""The triggers against the sandbox, serialized and rebuilt as the triggerer does, in a real event loop.

Waits synchronise on what the sandbox received (its request log) and on the boards' own counts,
never on sleeps; deadlines are driven by a replaced clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import threading
import uuid
from typing import Any

import pytest

from airflow_provider_jobmojito.exceptions import JobMojitoError, JobMojitoNotFoundError
from airflow_provider_jobmojito.sandbox import ManualClock
from airflow_provider_jobmojito.triggers.jobmojito import (
    SHARED_POLLS,
    InterviewStateTrigger,
    SharedPolls,
    WaitOutcome,
    _Horizon,
    _Memory,
    _StatusBoard,
)
from tests.conftest import AIRFLOW_V3

LIST = "/functions/v1/merchant-interview-list"
GET = "/functions/v1/job-interview-get"
GONE = {"error": "No interview or position found for the given id."}


def rebuilt(trigger: Any) -> Any:
    """What the triggerer runs: the trigger rebuilt from its serialized form."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    copy = getattr(importlib.import_module(module), name)(**kwargs)
    assert copy.serialize() == (classpath, kwargs)
    return copy


def calls(sandbox: Any, path: str) -> int:
    return sum(1 for r in sandbox.requests_log() if r["path"] == path)


async def first_event(trigger: Any, seconds: float = 60) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(run(), seconds)


def logged_here(trigger: Any) -> str:
    """Give ``trigger`` a standard logger of its own (Airflow 3's is structlog, which ``caplog``
    does not see) and return its name."""
    trigger._log = logging.getLogger(f"tests.trigger.{uuid.uuid4()}")
    return str(trigger._log.name)


async def until(condition: Any, seconds: float = 30) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), seconds)


@pytest.fixture
def positions(jobmojito_sandbox: Any, jobmojito_conn: Any) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    jobmojito_sandbox.seed([{"id": pid, "status": "active"} for pid in ids])
    jobmojito_conn()
    return ids


@pytest.fixture
def unlisted(jobmojito_sandbox: Any, jobmojito_conn: Any) -> str:
    """An active position the list does not show (another type): the board reads it by itself."""
    position_id = str(uuid.uuid4())
    jobmojito_sandbox.seed([{"id": position_id, "status": "active", "type": "assessment"}])
    jobmojito_conn()
    return position_id


class TestWaitOutcome:
    @pytest.mark.parametrize(
        ("outcome", "event"),
        [
            (
                WaitOutcome("success", "p", "completed"),
                {"outcome": "success", "position_id": "p", "status": "completed"},
            ),
            (
                WaitOutcome("failure", "p", "archived"),
                {"outcome": "failure", "position_id": "p", "status": "archived"},
            ),
            (WaitOutcome("timeout", "p"), {"outcome": "timeout", "position_id": "p", "status": None}),
            (
                WaitOutcome("error", "p", "active", message="404: gone", transient=False),
                {
                    "outcome": "error",
                    "position_id": "p",
                    "status": "active",
                    "message": "404: gone",
                    "transient": False,
                },
            ),
        ],
        ids=["success", "failure", "timeout", "error"],
    )
    def test_is_an_event_with_the_outcome_apart_from_the_positions_status(
        self, outcome: WaitOutcome, event: dict[str, Any]
    ) -> None:
        assert outcome.to_event() == event
        assert WaitOutcome.from_event(event) == outcome

    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            (
                {"status": "success", "position_id": "p", "position_status": "completed"},
                WaitOutcome("success", "p", "completed"),
            ),
            (
                {"status": "failure", "position_id": "p", "position_status": "archived"},
                WaitOutcome("failure", "p", "archived"),
            ),
            ({"status": "timeout", "position_id": "p"}, WaitOutcome("timeout", "p")),
            (
                {"status": "error", "position_id": "p", "message": "404"},
                WaitOutcome("error", "p", message="404"),
            ),
        ],
        ids=["success", "failure", "timeout", "error"],
    )
    def test_reads_the_events_of_1_0_0_where_status_was_the_outcome(
        self, event: dict[str, Any], expected: WaitOutcome
    ) -> None:
        assert WaitOutcome.from_event(event) == expected

    @pytest.mark.parametrize(
        "event",
        [
            {"position_id": "p", "status": "completed", "updated_at": "2026-01-01T00:00:00.000Z"},
            {"outcome": "done", "position_id": "p", "status": None},
            {"outcome": "success", "status": "completed"},
            {"outcome": "error", "position_id": "p", "status": None, "transient": "no"},
        ],
        ids=["a-change-event", "unknown-outcome", "no-position", "odd-transient"],
    )
    def test_refuses_anything_else_naming_only_its_keys(self, event: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=r"Not an InterviewStateTrigger event \(keys: ") as raised:
            WaitOutcome.from_event(event)
        assert "completed" not in str(raised.value)


class TestSharedPolls:
    def test_one_hook_per_connection_and_params_and_one_board_per_interval_in_a_loop(self) -> None:
        shared = SharedPolls()

        async def scenario() -> None:
            hook = shared.hook("a", {"timeout": 5})
            assert shared.hook("a", {"timeout": 5}) is hook
            assert shared.hook("a", {"timeout": 6}) is not hook
            assert shared.hook("b", {"timeout": 5}) is not hook
            board = shared.board("a", {"timeout": 5}, 60)
            assert shared.board("a", {"timeout": 5}, 60.0) is board
            assert board.hook is hook
            assert shared.board("a", {"timeout": 5}, 30) is not board
            assert shared.boards() == [board, shared.board("a", {"timeout": 5}, 30)]

        asyncio.run(scenario())

    def test_each_event_loop_has_its_own_and_aclose_forgets_the_running_ones(self) -> None:
        shared = SharedPolls()

        async def hook_of_a_loop() -> Any:
            return shared.hook("a", {})

        assert asyncio.run(hook_of_a_loop()) is not asyncio.run(hook_of_a_loop())

        async def closing() -> None:
            hook, board = shared.hook("a", {}), shared.board("a", {}, 1)
            await shared.aclose()
            assert shared.boards() == []
            assert shared.hook("a", {}) is not hook
            assert shared.board("a", {}, 1) is not board

        asyncio.run(closing())

    def test_the_triggers_use_the_one_documented_instance(self) -> None:
        assert InterviewStateTrigger.shared is SHARED_POLLS


class TestInterviewStateTrigger:
    def test_serializes_to_what_rebuilds_it(self) -> None:
        trigger = InterviewStateTrigger(
            position_id=str(uuid.uuid4()),
            status=["completed"],
            failure_status=["deleted"],
            poll_interval=5,
            deadline=1_900_000_000.0,
            hook_params={"timeout": 10},
        )
        assert rebuilt(trigger).serialize() == trigger.serialize()

    def test_fires_success_when_the_status_arrives(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        trigger = rebuilt(
            InterviewStateTrigger(position_id=positions[0], status=["completed"], poll_interval=0.05)
        )

        async def scenario() -> dict[str, Any]:
            waiting = asyncio.ensure_future(first_event(trigger))
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 2)
            jobmojito_sandbox.admin_set_status(positions[0], "completed")
            return await waiting

        event = asyncio.run(scenario())
        assert event == {"outcome": "success", "position_id": positions[0], "status": "completed"}

    def test_fires_failure_when_a_failure_status_is_read(self, positions: list[str]) -> None:
        trigger = rebuilt(
            InterviewStateTrigger(
                position_id=positions[0], status=["completed"], failure_status=["active"], poll_interval=0.05
            )
        )
        assert asyncio.run(first_event(trigger)) == {
            "outcome": "failure",
            "position_id": positions[0],
            "status": "active",
        }

    def test_fires_timeout_at_the_deadline_with_the_status_last_read(
        self, positions: list[str], jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The clock passes the deadline once the position was read twice. Until then it is an hour
        # away: what is left of it also bounds a round in real time (over a second under load).
        monkeypatch.setattr(
            InterviewStateTrigger,
            "clock",
            staticmethod(lambda: 7200.0 if calls(jobmojito_sandbox, LIST) >= 2 else 0.0),
        )
        trigger = rebuilt(
            InterviewStateTrigger(
                position_id=positions[0], status=["completed"], poll_interval=0.05, deadline=3600.0
            )
        )
        assert asyncio.run(first_event(trigger)) == {
            "outcome": "timeout",
            "position_id": positions[0],
            "status": "active",
        }
        assert calls(jobmojito_sandbox, LIST) == 2

    def test_a_deadline_already_past_fires_timeout_before_any_read(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        trigger = InterviewStateTrigger(position_id=positions[0], status=["completed"], deadline=0.0)
        assert asyncio.run(first_event(trigger)) == {
            "outcome": "timeout",
            "position_id": positions[0],
            "status": None,
        }
        assert jobmojito_sandbox.requests_log() == []

    def test_an_unknown_position_is_a_permanent_error(self, positions: list[str]) -> None:
        unknown = str(uuid.uuid4())
        trigger = InterviewStateTrigger(position_id=unknown, status=["completed"], poll_interval=0.05)
        event = asyncio.run(first_event(trigger))
        assert event == {
            "outcome": "error",
            "position_id": unknown,
            "status": None,
            "message": event["message"],
            "transient": False,
        }
        assert "404" in event["message"]

    def test_a_404_mid_wait_ends_that_wait_alone_and_says_no_secret(
        self, unlisted: str, positions: list[str], jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        token = jobmojito_sandbox.issue_token()
        jobmojito_conn(password=token)
        gone = InterviewStateTrigger(position_id=unlisted, status=["completed"], poll_interval=0.05)
        neighbour = InterviewStateTrigger(position_id=positions[0], status=["completed"], poll_interval=0.05)

        async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
            ends = asyncio.ensure_future(first_event(gone))
            goes_on = asyncio.ensure_future(first_event(neighbour))
            await until(lambda: calls(jobmojito_sandbox, GET) >= 2)  # read, and still active
            body = {"error": f"No interview or position found (caller {token})."}
            jobmojito_sandbox.add_fault("status", status=404, count=1, path=GET, body=body)
            ended = await ends
            assert not goes_on.done()
            jobmojito_sandbox.admin_set_status(positions[0], "completed")
            return ended, await goes_on

        ended, neighbour_event = asyncio.run(scenario())
        assert ended["outcome"] == "error"
        assert (ended["status"], ended["transient"]) == ("active", False)
        assert "404" in ended["message"]
        assert token not in ended["message"]
        assert neighbour_event == {"outcome": "success", "position_id": positions[0], "status": "completed"}

    @pytest.mark.parametrize("status", [503, 500], ids=["unavailable", "server-error"])
    def test_transient_errors_do_not_end_the_wait(
        self, positions: list[str], jobmojito_sandbox: Any, status: int
    ) -> None:
        jobmojito_sandbox.add_fault("status", status=status, count=4, path=LIST)
        trigger = InterviewStateTrigger(
            position_id=positions[0], status=["active"], poll_interval=0.05, hook_params={"max_retries": 1}
        )
        assert asyncio.run(first_event(trigger))["outcome"] == "success"
        assert jobmojito_sandbox.faults() == []  # every fault was answered before it succeeded

    def test_a_transient_error_of_its_own_read_does_not_end_the_wait(
        self, unlisted: str, jobmojito_sandbox: Any
    ) -> None:
        jobmojito_sandbox.add_fault("status", status=503, count=2, path=GET)
        trigger = InterviewStateTrigger(
            position_id=unlisted, status=["active"], poll_interval=0.05, hook_params={"max_retries": 0}
        )
        assert asyncio.run(first_event(trigger))["outcome"] == "success"
        assert calls(jobmojito_sandbox, GET) == 3

    def test_a_status_given_as_one_string_is_one_status(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        trigger = rebuilt(
            InterviewStateTrigger(
                position_id=positions[0], status="completed", failure_status="archived", poll_interval=0.05
            )
        )
        assert (trigger.status, trigger.failure_status) == (["completed"], ["archived"])

        async def scenario() -> dict[str, Any]:
            waiting = asyncio.ensure_future(first_event(trigger))
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 2)
            jobmojito_sandbox.admin_set_status(positions[0], "completed")
            return await waiting

        assert asyncio.run(scenario())["outcome"] == "success"

    def test_the_deadline_holds_while_a_round_is_still_reading(
        self, positions: list[str], jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The list answers in 20 s; the clock says the deadline is a tenth of a second away.
        jobmojito_sandbox.add_fault("delay", seconds=20, path=LIST)
        monkeypatch.setattr(InterviewStateTrigger, "clock", staticmethod(lambda: 99.9))
        trigger = rebuilt(
            InterviewStateTrigger(
                position_id=positions[0], status=["completed"], poll_interval=0.05, deadline=100.0
            )
        )

        async def scenario() -> tuple[dict[str, Any], int]:
            event = await first_event(trigger, seconds=10)  # not the 20 s of the round
            return event, SHARED_POLLS.board("jobmojito_default", {}, 0.05).rounds

        event, rounds = asyncio.run(scenario())
        assert event == {"outcome": "timeout", "position_id": positions[0], "status": None}
        # One round had started, and its list call was still unanswered.
        assert (rounds, calls(jobmojito_sandbox, LIST)) == (1, 0)

    @pytest.mark.parametrize("second_page", ["empty", "the-same"])
    def test_a_list_that_stops_before_it_says_it_is_complete_is_read_again_not_taken_as_whole(
        self, positions: list[str], jobmojito_sandbox: Any, second_page: str
    ) -> None:
        other = {"id": str(uuid.uuid4()), "status": "active"}
        first = {"data": [other], "pagination": {"total": 5000, "has_more": True}}
        then = {"data": [] if second_page == "empty" else [other], "pagination": first["pagination"]}
        jobmojito_sandbox.add_fault("answer", path=LIST, body=first)
        jobmojito_sandbox.add_fault("answer", path=LIST, body=then)
        trigger = InterviewStateTrigger(position_id=positions[0], status=["active"], poll_interval=0.05)

        async def scenario() -> tuple[dict[str, Any], int]:
            event = await first_event(trigger)
            return event, SHARED_POLLS.board("jobmojito_default", {}, 0.05).rounds

        event, rounds = asyncio.run(scenario())
        # The first round's partial answer was not taken as whole (no single read of the
        # position it did not show): the next round read the list again.
        assert event == {"outcome": "success", "position_id": positions[0], "status": "active"}
        assert (rounds, calls(jobmojito_sandbox, LIST), calls(jobmojito_sandbox, GET)) == (2, 3, 0)

    def test_a_waiting_trigger_logs_once_per_change_not_per_interval(
        self, positions: list[str], jobmojito_sandbox: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        trigger = InterviewStateTrigger(
            position_id=positions[0], status=["completed"], failure_status=["deleted"], poll_interval=0.05
        )
        logger = logged_here(trigger)

        async def scenario() -> dict[str, Any]:
            waiting = asyncio.ensure_future(first_event(trigger))
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 5)
            jobmojito_sandbox.admin_set_status(positions[0], "archived")
            seen = calls(jobmojito_sandbox, LIST)
            await until(lambda: calls(jobmojito_sandbox, LIST) >= seen + 5)
            jobmojito_sandbox.admin_set_status(positions[0], "completed")
            return await waiting

        with caplog.at_level(logging.DEBUG, logger=logger):
            assert asyncio.run(scenario())["outcome"] == "success"
        lines = [r.getMessage() for r in caplog.records if r.name == logger]
        assert lines == [
            f"Position {positions[0]}: waiting for completed.",
            f"Position {positions[0]} is active; waiting for completed.",
            f"Position {positions[0]} is archived; waiting for completed.",
        ]

    def test_many_triggers_of_one_connection_share_one_list_call_per_round(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        ids = [str(uuid.uuid4()) for _ in range(300)]
        jobmojito_sandbox.seed([{"id": pid, "status": "active"} for pid in ids])
        jobmojito_conn()
        triggers = [
            InterviewStateTrigger(position_id=pid, status=["completed"], poll_interval=0.2) for pid in ids
        ]

        async def scenario() -> tuple[list[dict[str, Any]], _StatusBoard]:
            waiting = [asyncio.ensure_future(first_event(trigger)) for trigger in triggers]
            board = SHARED_POLLS.board("jobmojito_default", {}, 0.2)
            await until(lambda: board.rounds >= 3)
            for pid in ids:
                jobmojito_sandbox.admin_set_status(pid, "completed")
            return await asyncio.gather(*waiting), board

        events, board = asyncio.run(scenario())
        assert {event["outcome"] for event in events} == {"success"}
        # One list call per round for all 300 (they fit one page), and no single reads.
        assert board.calls == {"list": board.rounds, "get": 0}
        assert calls(jobmojito_sandbox, LIST) == board.rounds
        assert calls(jobmojito_sandbox, GET) == 0

    def test_a_round_pages_only_as_far_as_the_watched_positions(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        # The list is newest-updated first: the position seeded first is on page 2 of 1,201 rows.
        old, new = str(uuid.uuid4()), str(uuid.uuid4())
        jobmojito_sandbox.seed([{"id": old, "status": "active"}])
        jobmojito_sandbox.seed([{"id": str(uuid.uuid4()), "status": "active"} for _ in range(1199)])
        jobmojito_sandbox.seed([{"id": new, "status": "active"}])
        jobmojito_conn()

        async def one_round(watched: set[str]) -> tuple[Any, dict[str, int]]:
            board = _StatusBoard(SHARED_POLLS.hook("jobmojito_default", {}), interval=1)
            return await board._read(watched), board.calls

        assert asyncio.run(one_round({new})) == ({new: "active"}, {"list": 1, "get": 0})
        assert asyncio.run(one_round({new, old})) == ({new: "active", old: "active"}, {"list": 2, "get": 0})
        offsets = [r.get("query", {}).get("offset") for r in jobmojito_sandbox.requests_log()]
        assert offsets == ["0", "0", "1000"]

    def test_a_position_the_list_does_not_show_is_read_by_itself_and_its_error_is_its_own(
        self, positions: list[str], unlisted: str
    ) -> None:
        missing = str(uuid.uuid4())

        async def one_round() -> Any:
            board = _StatusBoard(SHARED_POLLS.hook("jobmojito_default", {}), interval=1)
            return await board._read({positions[0], unlisted, missing}), board.calls

        statuses, counted = asyncio.run(one_round())
        assert counted == {"list": 1, "get": 2}
        assert (statuses[positions[0]], statuses[unlisted]) == ("active", "active")
        assert isinstance(statuses[missing], JobMojitoNotFoundError)


#: The API's clock in the change trigger's tests: years away from this machine's, so that a watch
#: reading its own clock would judge every change wrongly (2020-09-13 and 2036-07-18).
API_PAST, API_FUTURE = 1_600_000_000.0, 2_100_000_000.0


@dataclasses.dataclass
class ApiTime:
    """A sandbox whose time (its ``updated_at`` stamps and every answer's ``Date``) the test moves,
    and the connection ``jobmojito_default`` aimed at it."""

    clock: ManualClock
    sandbox: Any

    def seed(self, count: int, status: str = "active") -> list[str]:
        ids = [str(uuid.uuid4()) for _ in range(count)]
        self.sandbox.seed([{"id": pid, "status": status} for pid in ids])
        return ids

    def newest_first(self, status: str) -> list[str]:
        return [
            p["id"]
            for p in sorted(self.sandbox.positions().values(), key=lambda p: p["updated_at"])
            if p["status"] == status
        ][::-1]


@pytest.fixture
def api_time(
    request: pytest.FixtureRequest,
    jobmojito_sandbox_factory: Any,
    jobmojito_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> ApiTime:
    """The API's clock starts at :data:`API_PAST` (or the test's parameter). The watch's monotonic
    clock moves with it, as a real one moves with the API's: the time a watch measures between its
    start and an answer is the time that passed at the API."""
    from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

    clock = ManualClock(getattr(request, "param", API_PAST))
    sandbox = jobmojito_sandbox_factory(clock=clock)
    jobmojito_conn(host=sandbox.api_url, password=sandbox.issue_token())
    monkeypatch.setattr(InterviewStateChangeTrigger, "monotonic", staticmethod(clock), raising=False)
    return ApiTime(clock, sandbox)


class Watch:
    """A change trigger running in the test's event loop: the events it fired, and the polls it
    finished (it sleeps after each: the sleep is counted here, then lasts 10 ms, or until
    :meth:`resume` after :meth:`pause`).

    :param trigger: the trigger (its ``sleep`` is replaced on this instance).
    """

    def __init__(self, trigger: Any) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.polls = 0
        self.waits: list[float] = []
        trigger.sleep = self._sleep
        self._task: asyncio.Future[None] | None = None
        self._going = asyncio.Event()
        self._going.set()

    async def _sleep(self, seconds: float) -> None:
        self.polls += 1
        self.waits.append(seconds)
        await self._going.wait()
        await asyncio.sleep(0.01)

    def pause(self) -> None:
        """Hold the watch in its next sleep (between two polls) until :meth:`resume`."""
        self._going.clear()

    def resume(self) -> None:
        self._going.set()

    async def _collect(self) -> None:
        async for event in self.trigger.run():
            self.events.append(dict(event.payload))

    def start(self) -> Watch:
        self._task = asyncio.ensure_future(self._collect())
        return self

    async def until(self, condition: Any, seconds: float = 60) -> None:
        """Wait until ``condition()``; the trigger's own error, if it ended with one."""
        assert self._task is not None

        async def poll() -> None:
            while not condition():
                if self._task is not None and self._task.done():
                    self._task.result()  # raises what ended it
                    raise AssertionError("the watch ended")
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), seconds)

    async def polled(self, more: int = 1) -> None:
        """Wait until ``more`` polls have finished from now."""
        target = self.polls + more
        await self.until(lambda: self.polls >= target)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def entered(self) -> list[str]:
        return [event["position_id"] for event in self.events]


class MemoryStore:
    """An asset's state store as a watcher trigger sees it on Airflow 3.3 (``aget``/``aset``),
    in memory; ``failing`` makes every call raise, as a store that is down."""

    def __init__(self, *, failing: bool = False) -> None:
        self.values: dict[str, Any] = {}
        self.failing = failing
        self.calls: list[str] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        self.calls.append("aget")
        if self.failing:
            raise RuntimeError("the state store is down")
        return json.loads(json.dumps(self.values.get(key, default)))  # stored as JSON

    async def aset(self, key: str, value: Any) -> None:
        self.calls.append("aset")
        if self.failing:
            raise RuntimeError("the state store is down")
        self.values[key] = json.loads(json.dumps(value))


def change_trigger(**kwargs: Any) -> Any:
    from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

    return rebuilt(InterviewStateChangeTrigger(**{"status": "completed", "poll_interval": 1, **kwargs}))


def stamp(second: int) -> str:
    """An ``updated_at`` ``second`` seconds after 2026-01-01T00:00:00Z, as the API writes it."""
    return f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}.000Z"


START_2026 = 1_767_225_600.0


class TestChangeWatchMemory:
    """The change watch's memory and watermark: bounded, whatever the account's size."""

    def test_forgets_the_longest_absent_beyond_its_cap_and_judges_a_forgotten_one_by_its_start(
        self,
    ) -> None:
        memory = _Memory(_Horizon(START_2026 + 10, {}), cap=2)
        rows = {pid: {"id": pid, "status": "completed", "updated_at": stamp(1)} for pid in "abcd"}
        assert memory.entries(rows) == []  # before the start: the baseline
        memory.entries({})  # all four leave...
        memory.entries({"e": {"id": "e", "status": "completed", "updated_at": stamp(20)}})
        # ...two of them are forgotten; the positions remembered are those listed, and two others.
        assert len(memory._seen) == 3
        # Back unchanged, a forgotten one from before the start stays the baseline; a remembered
        # one too; a forgotten one that changed after the start fires.
        back = {
            "a": {"id": "a", "status": "completed", "updated_at": stamp(1)},
            "c": {"id": "c", "status": "completed", "updated_at": stamp(1)},
            "b": {"id": "b", "status": "completed", "updated_at": stamp(30)},
        }
        assert [row["id"] for row in memory.entries(back)] == ["b"]

    def test_the_watermark_holds_at_most_its_cap_and_moves_past_what_it_drops(self) -> None:
        memory = _Memory(_Horizon(START_2026, {}), cap=100)
        memory.entries(
            {f"p{n}": {"id": f"p{n}", "status": "completed", "updated_at": stamp(n)} for n in range(10)}
        )
        watermark = memory.watermark(START_2026 + 8, margin=5, cap=3)
        # Listed since 3 s (the margin before the poll): seven; the newest three kept.
        assert watermark.seen == {"p9": stamp(9), "p8": stamp(8), "p7": stamp(7)}
        assert START_2026 + 6 < watermark.after <= START_2026 + 7
        assert memory.accounted_by(watermark)
        stored = _Horizon.from_json(json.loads(json.dumps(watermark.to_json())))  # as the store keeps it
        assert stored is not None
        assert (stored.seen, stored.after) == (watermark.seen, pytest.approx(watermark.after, abs=1e-6))
        # A watch restarted from it: what it kept, or dropped, does not fire; a later change does.
        listed = {
            pid: {"id": pid, "status": "completed", "updated_at": stamp(n)}
            for pid, n in (("p9", 9), ("p6", 6))
        }
        listed["p10"] = {"id": "p10", "status": "completed", "updated_at": stamp(10)}
        assert [row["id"] for row in _Memory(stored, cap=100).entries(listed)] == ["p10"]


@pytest.mark.skipif(not AIRFLOW_V3, reason="BaseEventTrigger and AssetWatcher need Airflow 3")
class TestInterviewStateChangeTrigger:
    def test_serializes_to_what_rebuilds_it(self) -> None:
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

        trigger = InterviewStateChangeTrigger(status="completed", poll_interval=30)
        assert rebuilt(trigger).serialize()[1] == {
            "status": ["completed"],
            "jobmojito_conn_id": "jobmojito_default",
            "poll_interval": 30.0,
            "hook_params": {},
        }
        assert InterviewStateChangeTrigger.shared is SHARED_POLLS

    def test_fires_once_per_entry_never_for_positions_already_there(self, api_time: ApiTime) -> None:
        already, enters, edited = api_time.seed(3)
        api_time.sandbox.admin_set_status(already, "completed")
        api_time.clock.advance(60)
        watch = Watch(change_trigger())

        async def scenario() -> None:
            watch.start()
            await watch.polled()  # the baseline is taken
            api_time.sandbox.admin_set_status(enters, "completed")
            api_time.sandbox.admin_set_status(already, "completed")  # an edit: still completed
            await watch.until(lambda: len(watch.events) >= 1)
            await watch.polled(2)
            api_time.sandbox.admin_set_status(enters, "archived")  # leaves...
            await watch.polled(2)
            api_time.sandbox.admin_set_status(enters, "completed")  # ...and comes back
            api_time.sandbox.admin_set_status(edited, "completed")
            await watch.until(lambda: len(watch.events) >= 3)
            await watch.polled(3)
            await watch.stop()

        asyncio.run(scenario())
        events = watch.events
        assert watch.entered()[:1] == [enters]
        assert sorted(watch.entered()[1:]) == sorted([enters, edited])
        assert len(events) == 3
        for event in events:
            # "status" is the position's status: this payload has no outcome.
            assert set(event) == {"position_id", "status", "updated_at"}
            assert event["status"] == "completed"
            assert isinstance(event["updated_at"], str)
            assert event["updated_at"].endswith("Z")
        # The last entry carries the time of the change that made it.
        last = events[-1]
        assert last["updated_at"] == api_time.sandbox.position(last["position_id"])["updated_at"]

    def test_pages_through_every_position_in_a_watched_status(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

        ids = [str(uuid.uuid4()) for _ in range(1001)]
        jobmojito_sandbox.seed([{"id": pid, "status": "active"} for pid in ids])
        jobmojito_conn()
        trigger = InterviewStateChangeTrigger(status="completed", poll_interval=0.05)
        entered: set[str] = set()

        async def scenario() -> None:
            async def collect() -> None:
                async for event in trigger.run():
                    entered.add(event.payload["position_id"])

            task = asyncio.ensure_future(collect())
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 1)  # the (empty) baseline
            for pid in ids:
                jobmojito_sandbox.admin_set_status(pid, "completed")
            await until(lambda: len(entered) == len(ids))
            task.cancel()

        asyncio.run(scenario())
        assert entered == set(ids)
        pages = [r["query"] for r in jobmojito_sandbox.requests_log() if r["path"] == LIST]
        assert {"status": "completed", "limit": "1000", "offset": "1000"} in pages

    def test_a_position_leaving_between_two_page_reads_makes_no_false_entry(self, api_time: ApiTime) -> None:
        # 2,002 completed positions: three pages. A position of page 1 leaves the status before
        # page 3 is read; the rows move up one place and page 3 starts one row too far: the
        # 2,001st newest is read by no page of that poll. It is still completed, unchanged.
        api_time.seed(2002, "completed")
        api_time.clock.advance(60)
        newest_first = api_time.newest_first("completed")
        leaves, skipped = newest_first[0], newest_first[2000]
        enters = api_time.seed(1)[0]
        watch = Watch(change_trigger())

        async def scenario() -> None:
            watch.start()
            await watch.polled()  # the baseline
            api_time.sandbox.add_fault(
                "change", path=LIST, query={"offset": 2000}, position_id=leaves, position_status="archived"
            )
            await watch.until(lambda: api_time.sandbox.faults() == [])
            await watch.polled(3)  # the poll that met the shift, and two after it
            api_time.sandbox.admin_set_status(enters, "completed")
            await watch.until(lambda: len(watch.events) >= 1)
            await watch.polled(2)
            await watch.stop()

        asyncio.run(scenario())
        assert api_time.sandbox.position(leaves)["status"] == "archived"
        assert api_time.sandbox.position(skipped)["status"] == "completed"
        assert watch.entered() == [enters]

    @pytest.mark.parametrize("entry", ["first", "again"])
    def test_an_entry_a_shift_hid_from_the_pages_still_fires_once(
        self, api_time: ApiTime, entry: str
    ) -> None:
        # It enters between two page reads: it goes to the top of the list (newest first), which
        # was read already, and every row after it moves down one place.
        api_time.seed(1500, "completed")
        enters = api_time.seed(1)[0]
        if entry == "again":  # it was completed, left, and comes back
            api_time.sandbox.admin_set_status(enters, "completed")
        api_time.clock.advance(60)
        watch = Watch(change_trigger())

        async def scenario() -> None:
            watch.start()
            await watch.polled()  # the baseline
            if entry == "again":
                api_time.sandbox.admin_set_status(enters, "archived")
                await watch.polled(2)
            api_time.sandbox.add_fault(
                "change", path=LIST, query={"offset": 1000}, position_id=enters, position_status="completed"
            )
            await watch.until(lambda: api_time.sandbox.faults() == [])
            await watch.until(lambda: len(watch.events) >= 1)
            await watch.polled(3)
            await watch.stop()

        asyncio.run(scenario())
        assert watch.entered() == [enters]

    def test_a_position_edited_while_the_pages_are_read_is_no_entry(self, api_time: ApiTime) -> None:
        # A completed position of page 2 is edited (it stays completed) before page 2 is read: it
        # moves to the top of the list, already read, and no page of that poll shows it.
        api_time.seed(1500, "completed")
        api_time.clock.advance(60)
        edited = api_time.newest_first("completed")[1200]
        enters = api_time.seed(1)[0]
        watch = Watch(change_trigger())

        async def scenario() -> None:
            watch.start()
            await watch.polled()  # the baseline
            api_time.sandbox.add_fault(
                "change", path=LIST, query={"offset": 1000}, position_id=edited, position_status="completed"
            )
            await watch.until(lambda: api_time.sandbox.faults() == [])
            await watch.polled(3)
            api_time.sandbox.admin_set_status(enters, "completed")
            await watch.until(lambda: len(watch.events) >= 1)
            await watch.polled(2)
            await watch.stop()

        asyncio.run(scenario())
        assert api_time.newest_first("completed")[1] == edited  # it was edited, and moved up
        assert watch.entered() == [enters]

    @pytest.mark.parametrize(
        "api_time", [API_PAST, API_FUTURE], indirect=True, ids=["api-behind", "api-ahead"]
    )
    def test_an_entry_made_while_the_api_fails_at_start_fires_once_it_answers(
        self, api_time: ApiTime
    ) -> None:
        already, enters = api_time.seed(2)
        api_time.sandbox.admin_set_status(already, "completed")
        api_time.clock.advance(60)
        api_time.sandbox.add_fault("status", status=503, count=10_000, path=LIST)
        watch = Watch(change_trigger(hook_params={"max_retries": 0}))

        async def scenario() -> None:
            watch.start()
            await watch.polled(2)  # the watch has started, and the API fails
            api_time.clock.advance(30)
            api_time.sandbox.admin_set_status(enters, "completed")
            api_time.clock.advance(30)
            api_time.sandbox.clear_faults()
            await watch.until(lambda: len(watch.events) >= 1)
            await watch.polled(3)
            await watch.stop()

        asyncio.run(scenario())
        assert watch.entered() == [enters]

    def test_transient_errors_do_not_end_the_watch(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

        trigger = InterviewStateChangeTrigger(
            status="completed", poll_interval=0.05, hook_params={"max_retries": 0}
        )

        async def scenario() -> dict[str, Any]:
            waiting = asyncio.ensure_future(first_event(trigger))
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 1)
            jobmojito_sandbox.add_fault("status", status=503, count=3, path=LIST)
            await until(lambda: jobmojito_sandbox.faults() == [])
            jobmojito_sandbox.admin_set_status(positions[1], "completed")
            return await waiting

        assert asyncio.run(scenario())["position_id"] == positions[1]

    def test_a_permanent_error_does_not_end_the_watch_and_backs_off(
        self, api_time: ApiTime, caplog: pytest.LogCaptureFixture
    ) -> None:
        already, enters = api_time.seed(2)
        api_time.sandbox.admin_set_status(already, "completed")
        api_time.clock.advance(60)
        trigger = change_trigger(poll_interval=1)
        logger = logged_here(trigger)
        watch = Watch(trigger)

        async def scenario() -> None:
            watch.pause()
            watch.start()
            await watch.polled()  # the baseline is taken: now the API refuses six polls, and one enters
            api_time.sandbox.add_fault("status", status=404, count=6, path=LIST, body=GONE)
            api_time.sandbox.admin_set_status(enters, "completed")
            watch.resume()
            await watch.until(lambda: len(watch.waits) >= 8)
            await watch.stop()

        with caplog.at_level(logging.DEBUG, logger=logger):
            asyncio.run(scenario())
        # Doubling up to 8 intervals while refused, back to one after the poll that succeeded.
        assert watch.waits[:8] == [1, 2, 4, 8, 8, 8, 8, 1]
        # The baseline was kept: the entry made while refused fires, the position already there not.
        assert watch.entered() == [enters]
        # One line for six refused polls, and none a traceback; one when it reads again.
        lines = [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records if r.name == logger]
        assert [(level, "404" in message, info) for level, message, info in lines] == [
            (logging.INFO, False, None),  # the baseline
            (logging.ERROR, True, None),
            (logging.INFO, False, None),  # reading again
        ]

    def test_a_watch_of_completed_does_not_fire_for_an_active_row_the_api_sent_anyway(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

        active = jobmojito_sandbox.position(positions[0])
        unfiltered = {"data": [active], "pagination": {"total": 1, "has_more": False}}
        trigger = InterviewStateChangeTrigger(status="completed", poll_interval=0.05)
        events: list[dict[str, Any]] = []

        async def scenario() -> None:
            async def collect() -> None:
                async for event in trigger.run():
                    events.append(dict(event.payload))

            task = asyncio.ensure_future(collect())
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 1)  # the (empty) baseline
            # The API ignores its status filter for three polls: it lists an active position.
            jobmojito_sandbox.add_fault("answer", count=3, path=LIST, body=unfiltered)
            await until(lambda: jobmojito_sandbox.faults() == [])
            jobmojito_sandbox.admin_set_status(positions[1], "completed")
            await until(lambda: len(events) >= 1)
            task.cancel()

        asyncio.run(scenario())
        assert active["status"] == "active"
        assert [event["position_id"] for event in events] == [positions[1]]


@pytest.mark.skipif(not AIRFLOW_V3, reason="BaseEventTrigger and AssetWatcher need Airflow 3")
class TestInterviewStateChangeTriggerRestarts:
    """On Airflow 3.3 the triggerer gives a watcher trigger its asset's state store
    (``asset_state_store``): the watch keeps its watermark there across restarts."""

    def test_a_restarted_watch_fires_what_entered_while_it_was_down_once_and_nothing_older(
        self, api_time: ApiTime
    ) -> None:
        already, before, while_down = api_time.seed(3)
        api_time.sandbox.admin_set_status(already, "completed")
        api_time.clock.advance(60)
        store = MemoryStore()
        first, second = change_trigger(), change_trigger()
        first.asset_state_store = second.asset_state_store = store

        async def scenario() -> tuple[Watch, Watch]:
            up = Watch(first).start()
            await up.polled()
            api_time.sandbox.admin_set_status(before, "completed")
            await up.until(lambda: len(up.events) >= 1)
            await up.polled()
            await up.stop()  # the triggerer goes down
            api_time.clock.advance(60)
            api_time.sandbox.admin_set_status(while_down, "completed")
            api_time.clock.advance(60)
            again = Watch(second).start()  # and comes back
            await again.until(lambda: len(again.events) >= 1)
            await again.polled(3)
            await again.stop()
            return up, again

        up, again = asyncio.run(scenario())
        assert up.entered() == [before]
        # Still completed, "already" and "before" do not fire again.
        assert {api_time.sandbox.position(pid)["status"] for pid in (already, before)} == {"completed"}
        assert again.entered() == [while_down]

    def test_a_triggerer_that_dies_before_the_poll_after_an_entry_fires_it_again_after_the_restart(
        self, api_time: ApiTime
    ) -> None:
        # The triggerer sends the events a trigger gave it at its next sync, about a second later;
        # the store writes at once. A watermark covering an entry must not be stored before that
        # entry's event could be sent, or a triggerer dying in between loses it for good.
        [enters] = api_time.seed(1)
        api_time.clock.advance(60)
        store = MemoryStore()
        first, second = change_trigger(), change_trigger()
        first.asset_state_store = second.asset_state_store = store

        async def scenario() -> tuple[Watch, Watch, Any]:
            up = Watch(first).start()
            await up.polled()  # the baseline, stored at once: it fired nothing
            baseline = json.loads(json.dumps(store.values))
            up.pause()
            api_time.sandbox.admin_set_status(enters, "completed")
            await up.polled()  # the poll that fires the entry; the triggerer dies in its sleep
            stored_then = json.loads(json.dumps(store.values))
            await up.stop()
            again = Watch(second).start()
            await again.until(lambda: len(again.events) >= 1)
            await again.polled(2)
            await again.stop()
            return up, again, (baseline, stored_then)

        up, again, (baseline, stored_then) = asyncio.run(scenario())
        assert up.entered() == [enters]
        assert baseline  # the baseline poll fired nothing: its watermark was stored at once
        assert stored_then == baseline  # nothing covering the entry was stored yet
        assert again.entered() == [enters]  # at least once: sent again, never lost

    def test_without_a_store_a_restarted_watch_starts_anew(self, api_time: ApiTime) -> None:
        while_down, enters = api_time.seed(2)
        first, second = change_trigger(), change_trigger()
        assert first.asset_state_store is None  # none injected: Airflow before 3.3, or no triggerer

        async def scenario() -> Watch:
            up = Watch(first).start()
            await up.polled()
            await up.stop()
            api_time.clock.advance(60)
            api_time.sandbox.admin_set_status(while_down, "completed")
            api_time.clock.advance(60)
            again = Watch(second).start()
            await again.polled()
            api_time.sandbox.admin_set_status(enters, "completed")
            await again.until(lambda: len(again.events) >= 1)
            await again.polled(2)
            await again.stop()
            return again

        assert asyncio.run(scenario()).entered() == [enters]

    @pytest.mark.parametrize(
        "other",
        [{"status": "archived"}, {"jobmojito_conn_id": "jobmojito_other"}],
        ids=["another-status", "another-connection"],
    )
    def test_two_watches_on_one_asset_keep_apart_watermarks(
        self, api_time: ApiTime, jobmojito_conn: Any, other: dict[str, Any]
    ) -> None:
        jobmojito_conn(
            "jobmojito_other", host=api_time.sandbox.api_url, password=api_time.sandbox.issue_token()
        )
        [while_down] = api_time.seed(1)
        store = MemoryStore()
        first, neighbour, again = change_trigger(), change_trigger(**other), change_trigger()
        first.asset_state_store = neighbour.asset_state_store = again.asset_state_store = store

        async def scenario() -> Watch:
            up = Watch(first).start()
            await up.polled()
            await up.stop()
            api_time.clock.advance(60)
            api_time.sandbox.admin_set_status(while_down, "completed")
            api_time.clock.advance(60)
            # Another watch of the same asset polls, later than the entry, and stops.
            next_door = Watch(neighbour).start()
            await next_door.polled()
            await next_door.stop()
            back = Watch(again).start()
            await back.until(lambda: len(back.events) >= 1)
            await back.polled(2)
            await back.stop()
            return back

        assert asyncio.run(scenario()).entered() == [while_down]
        assert len(store.values) == 2

    def test_a_failing_store_does_not_end_the_watch_and_is_logged_once(
        self, api_time: ApiTime, caplog: pytest.LogCaptureFixture
    ) -> None:
        enters, later = api_time.seed(2)
        store = MemoryStore(failing=True)
        trigger = change_trigger()
        trigger.asset_state_store = store
        logger = logged_here(trigger)
        watch = Watch(trigger)

        async def scenario() -> None:
            watch.start()
            await watch.polled()
            api_time.sandbox.admin_set_status(enters, "completed")
            await watch.until(lambda: len(watch.events) >= 1)
            api_time.sandbox.admin_set_status(later, "completed")
            await watch.until(lambda: len(watch.events) >= 2)
            await watch.polled(2)
            await watch.stop()

        with caplog.at_level(logging.DEBUG, logger=logger):
            asyncio.run(scenario())
        assert watch.entered() == [enters, later]
        assert {"aget", "aset"} <= set(store.calls)
        assert store.calls.count("aset") >= 2  # tried again
        warnings = [
            r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= logging.WARNING
        ]
        assert len(warnings) == 2  # one for reading, one for writing, however often they fail
        assert all("state store" in line for line in warnings)
        assert all(r.exc_info is None for r in caplog.records if r.name == logger)

    def test_a_watch_of_several_assets_keeps_no_watermark_and_says_so_once(
        self, api_time: ApiTime, caplog: pytest.LogCaptureFixture
    ) -> None:
        from airflow.sdk import Asset
        from airflow.sdk.execution_time.context import AssetStateStoreAccessors

        [enters] = api_time.seed(1)
        trigger = change_trigger()
        # What the triggerer injects when identical watches of two assets share one trigger.
        trigger.asset_state_store = AssetStateStoreAccessors(inlets=[Asset("one"), Asset("two")])
        logger = logged_here(trigger)
        watch = Watch(trigger)

        async def scenario() -> None:
            watch.start()
            await watch.polled()
            api_time.sandbox.admin_set_status(enters, "completed")
            await watch.until(lambda: len(watch.events) >= 1)
            await watch.polled(2)
            await watch.stop()

        with caplog.at_level(logging.DEBUG, logger=logger):
            asyncio.run(scenario())
        assert watch.entered() == [enters]
        lines = [
            r.getMessage() for r in caplog.records if r.name == logger and "state store" in r.getMessage()
        ]
        assert len(lines) == 1
        assert "several assets" in lines[0]


@pytest.mark.skipif(AIRFLOW_V3, reason="on Airflow 3 the class exists")
def test_on_airflow_2_the_event_trigger_import_says_why_it_is_missing() -> None:
    with pytest.raises(ImportError, match=r"needs Airflow 3\.0 or later"):
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger  # noqa: F401


@pytest.fixture
def broken_list() -> Any:
    """A JobMojito stand-in whose answers claim gzip but are not (every read fails, transiently);
    yields its URL and the number of requests it answered."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answered: list[str] = []

    class Broken(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server dispatches to
            answered.append(self.path)  # before answering: counted when the client sees it
            body = b"this is not gzip"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/functions/v1", answered
    server.shutdown()
    server.server_close()


@pytest.fixture
def dateless_list() -> Any:
    """A JobMojito stand-in whose list answers carry no ``Date`` header (a proxy that drops it) and
    whose rows carry no ``updated_at``; yields its URL and its rows, which the test changes."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    rows: list[dict[str, Any]] = []

    class Dateless(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server dispatches to
            status = parse_qs(urlsplit(self.path).query).get("status", [None])[0]
            data = [row for row in list(rows) if row["status"] == status]
            page = {"data": data, "pagination": {"total": len(data), "has_more": False}}
            body = json.dumps(page).encode()
            self.send_response_only(200)  # no Date, no Server
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dateless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/functions/v1", rows
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(not AIRFLOW_V3, reason="BaseEventTrigger and AssetWatcher need Airflow 3")
def test_an_api_without_dates_makes_the_first_poll_the_baseline_and_keeps_no_watermark(
    dateless_list: tuple[str, list[dict[str, Any]]], jobmojito_conn: Any
) -> None:
    url, rows = dateless_list
    jobmojito_conn(host=url)
    already, enters = str(uuid.uuid4()), str(uuid.uuid4())
    rows.append({"id": already, "status": "completed"})
    store = MemoryStore()
    trigger = change_trigger()
    trigger.asset_state_store = store
    watch = Watch(trigger)

    async def scenario() -> None:
        watch.start()
        await watch.polled()
        rows.append({"id": enters, "status": "completed"})
        await watch.until(lambda: len(watch.events) >= 1)
        await watch.polled(2)
        await watch.stop()

    asyncio.run(scenario())
    assert watch.entered() == [enters]
    assert store.values == {}  # without the API's time, no watermark


def test_triggers_sharing_a_board_reach_their_deadline_when_every_read_fails(
    broken_list: tuple[str, list[str]], jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, answered = broken_list
    jobmojito_conn(host=url)
    # The deadline passes once the shared board failed three rounds. Until then it is an hour away:
    # what is left of it also bounds a round's reads in real time, which can take over a second on
    # a loaded machine.
    monkeypatch.setattr(
        InterviewStateTrigger, "clock", staticmethod(lambda: 7200.0 if len(answered) >= 3 else 0.0)
    )
    triggers = [
        InterviewStateTrigger(
            position_id=str(uuid.uuid4()),
            status=["completed"],
            poll_interval=0.05,
            deadline=3600.0,
            hook_params={"max_retries": 0},
        )
        for _ in range(2)
    ]

    async def scenario() -> list[dict[str, Any]]:
        return await asyncio.gather(*(first_event(trigger) for trigger in triggers))

    events = asyncio.run(scenario())
    assert [event["outcome"] for event in events] == ["timeout", "timeout"]
    assert len(answered) == 3  # one read per round for both


def test_callers_arriving_together_share_one_async_client_and_one_sign_in(jobmojito_conn: Any) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
    from airflow_provider_jobmojito.sandbox import SandboxServer

    with SandboxServer(email="t@example.com", password="pw-0123") as server:
        jobmojito_conn(host=server.api_url, login="t@example.com", password="pw-0123")
        hook = JobMojitoHook()

        async def scenario() -> list[Any]:
            clients = await asyncio.gather(*(hook.async_client() for _ in range(5)))
            await asyncio.gather(*(hook.alist_interviews(limit=1) for _ in range(5)))
            await hook.aclose()
            return clients

        clients = asyncio.run(scenario())
        assert len({id(client) for client in clients}) == 1
        assert [r["path"] for r in server.requests_log()].count("/auth/v1/token") == 1


def test_an_unexpected_failure_of_a_round_is_a_permanent_error_for_its_waiters(
    positions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def odd(self: Any, **filters: Any) -> Any:
        yield {"data": [], "pagination": []}
        raise TypeError("an answer the board cannot read")

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    monkeypatch.setattr(JobMojitoHook, "aiter_interview_pages", odd)
    trigger = InterviewStateTrigger(position_id=positions[0], status=["completed"], poll_interval=0.05)
    event = asyncio.run(first_event(trigger))
    assert (event["outcome"], event["transient"]) == ("error", False)
    assert event["message"] == "Reading the positions' statuses failed: TypeError."
    assert not issubclass(TypeError, JobMojitoError)
