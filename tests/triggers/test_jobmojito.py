"""The triggers against the sandbox, serialized and rebuilt as the triggerer does, in a real event loop."""

from __future__ import annotations

import asyncio
import importlib
import threading
import uuid
from typing import Any

import pytest

from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateTrigger, _StatusBoard
from tests.conftest import AIRFLOW_V3

LIST = "/functions/v1/merchant-interview-list"
GET = "/functions/v1/job-interview-get"


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
        assert event == {"status": "success", "position_id": positions[0], "position_status": "completed"}

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({"status": ["completed"], "failure_status": ["active"]}, "failure"),
            ({"status": ["completed"], "deadline": 0.0}, "timeout"),
        ],
    )
    def test_fires_failure_and_timeout(
        self, positions: list[str], kwargs: dict[str, Any], expected: str
    ) -> None:
        trigger = rebuilt(InterviewStateTrigger(position_id=positions[0], poll_interval=0.05, **kwargs))
        assert asyncio.run(first_event(trigger))["status"] == expected

    def test_an_unknown_position_is_an_error_event(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        trigger = InterviewStateTrigger(
            position_id=str(uuid.uuid4()), status=["completed"], poll_interval=0.05
        )
        event = asyncio.run(first_event(trigger))
        assert event["status"] == "error"
        assert "404" in event["message"]

    def test_transient_errors_do_not_end_the_wait(self, positions: list[str], jobmojito_sandbox: Any) -> None:
        jobmojito_sandbox.add_fault("status", status=503, count=20, path=LIST)
        trigger = InterviewStateTrigger(
            position_id=positions[0], status=["active"], poll_interval=0.05, hook_params={"max_retries": 1}
        )
        assert asyncio.run(first_event(trigger))["status"] == "success"
        assert jobmojito_sandbox.faults() == []  # every fault was answered before it succeeded

    def test_many_triggers_of_one_connection_share_one_list_call_per_round(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        ids = [str(uuid.uuid4()) for _ in range(300)]
        jobmojito_sandbox.seed([{"id": pid, "status": "active"} for pid in ids])
        jobmojito_conn()
        triggers = [
            InterviewStateTrigger(position_id=pid, status=["completed"], poll_interval=0.2) for pid in ids
        ]

        async def scenario() -> list[dict[str, Any]]:
            waiting = [asyncio.ensure_future(first_event(trigger)) for trigger in triggers]
            await until(lambda: calls(jobmojito_sandbox, LIST) >= 3)
            for pid in ids:
                jobmojito_sandbox.admin_set_status(pid, "completed")
            return await asyncio.gather(*waiting)

        events = asyncio.run(scenario())
        assert {event["status"] for event in events} == {"success"}
        rounds = calls(jobmojito_sandbox, LIST)
        # One list call per round for all 300 (they fit one page), and no single reads.
        assert 4 <= rounds <= 8
        assert calls(jobmojito_sandbox, GET) == 0

    def test_a_position_the_list_does_not_show_is_read_by_itself(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        board = _StatusBoard(JobMojitoHook(), interval=0.05)
        missing = str(uuid.uuid4())

        async def scenario() -> Any:
            return await board._read({positions[0], missing})

        with pytest.raises(Exception, match="404"):
            asyncio.run(scenario())
        assert board.calls == {"list": 1, "get": 1}


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

    def test_fires_once_per_entry_never_for_positions_already_there(
        self, positions: list[str], jobmojito_sandbox: Any
    ) -> None:
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

        already, enters, edited = positions
        jobmojito_sandbox.admin_set_status(already, "completed")
        trigger = rebuilt(InterviewStateChangeTrigger(status=["completed"], poll_interval=0.05))
        events: list[dict[str, Any]] = []

        async def scenario() -> None:
            async def collect() -> None:
                async for event in trigger.run():
                    events.append(dict(event.payload))

            task = asyncio.ensure_future(collect())
            polls = lambda: calls(jobmojito_sandbox, LIST)  # noqa: E731
            await until(lambda: polls() >= 2)  # the baseline is taken
            jobmojito_sandbox.admin_set_status(enters, "completed")
            jobmojito_sandbox.admin_set_status(already, "completed")  # an edit: still completed
            await until(lambda: len(events) >= 1)
            seen = polls()
            await until(lambda: polls() >= seen + 2)
            jobmojito_sandbox.admin_set_status(enters, "archived")  # leaves...
            seen = polls()
            await until(lambda: polls() >= seen + 2)
            jobmojito_sandbox.admin_set_status(enters, "completed")  # ...and comes back
            jobmojito_sandbox.admin_set_status(edited, "completed")
            await until(lambda: len(events) >= 3)
            seen = polls()
            await until(lambda: polls() >= seen + 3)
            task.cancel()

        asyncio.run(scenario())
        assert [event["position_id"] for event in events[:1]] == [enters]
        assert sorted(event["position_id"] for event in events[1:]) == sorted([enters, edited])
        assert len(events) == 3
        for event in events:
            assert set(event) == {"position_id", "status", "updated_at"}
            assert event["status"] == "completed"
            assert isinstance(event["updated_at"], str)
            assert event["updated_at"].endswith("Z")
        # The last entry carries the time of the change that made it.
        last = events[-1]
        assert last["updated_at"] == jobmojito_sandbox.position(last["position_id"])["updated_at"]

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


@pytest.mark.skipif(AIRFLOW_V3, reason="on Airflow 3 the class exists")
def test_on_airflow_2_the_event_trigger_import_says_why_it_is_missing() -> None:
    with pytest.raises(ImportError, match=r"needs Airflow 3\.0 or later"):
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger  # noqa: F401


@pytest.fixture
def broken_list() -> Any:
    """A JobMojito stand-in whose list answers claim gzip but are not: every read fails."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Broken(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server dispatches to
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
    yield f"http://127.0.0.1:{server.server_port}/functions/v1"
    server.shutdown()
    server.server_close()


def test_triggers_sharing_a_board_reach_their_deadline_when_every_read_fails(
    broken_list: str, jobmojito_conn: Any
) -> None:
    import time

    jobmojito_conn(host=broken_list)
    deadline = time.time() + 2
    triggers = [
        InterviewStateTrigger(
            position_id=str(uuid.uuid4()),
            status=["completed"],
            poll_interval=0.2,
            deadline=deadline,
            hook_params={"max_retries": 0},
        )
        for _ in range(2)
    ]

    async def scenario() -> list[dict[str, Any]]:
        return await asyncio.gather(*(first_event(trigger, seconds=60) for trigger in triggers))

    assert [event["status"] for event in asyncio.run(scenario())] == ["timeout", "timeout"]


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
