"""A hook whose connection's credentials are rotated while it lives: a long poke-mode wait, and the
async calls of a triggerer. Over real HTTP to the sandbox, which revokes sessions and changes the
password as a user would; connection reads are counted where Airflow answers them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from airflow_provider_jobmojito.auth import SIGN_IN_CACHE
from airflow_provider_jobmojito.exceptions import JobMojitoAuthError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import DEFAULT_EMAIL, DEFAULT_PASSWORD
from airflow_provider_jobmojito.sensors.jobmojito import InterviewStateSensor
from airflow_provider_jobmojito.token_cache import configured
from tests.rotation import ConnectionReads, count_connection_reads

POSITION = str(uuid.uuid4())
GET = "/functions/v1/job-interview-get"
LIST = "/functions/v1/merchant-interview-list"
CONN = "jobmojito_default"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "active"}])
    return jobmojito_sandbox


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> ConnectionReads:
    return count_connection_reads(monkeypatch)


def answered(sandbox: Any, path: str = GET) -> list[int]:
    """The statuses the API answered on ``path``, in order."""
    return [r["status"] for r in sandbox.requests_log() if r["path"] == path]


def rotate_token(sandbox: Any, jobmojito_conn: Any, old: str) -> str:
    """What a user does: a new token in the connection, then the old one revoked."""
    new = sandbox.issue_token()
    jobmojito_conn(password=new)
    sandbox.revoke_token(old)
    return new


class TestPokeMode:
    def test_a_sensor_poking_in_one_process_follows_a_token_rotated_while_it_waits(
        self, sandbox: Any, jobmojito_conn: Any, reads: ConnectionReads
    ) -> None:
        old = sandbox.issue_token()
        jobmojito_conn(password=old)
        sensor = InterviewStateSensor(task_id="wait", position_id=POSITION, status="completed")
        assert not sensor.poke({}).is_done
        rotate_token(sandbox, jobmojito_conn, old)
        sandbox.admin_set_status(POSITION, "completed")

        assert sensor.poke({}).is_done

        assert answered(sandbox) == [200, 401, 200]
        assert reads.sync == [CONN, CONN]  # its first use, and once after the refusal

    def test_a_revoked_token_still_in_the_connection_fails_the_poke_after_one_more_read(
        self, sandbox: Any, jobmojito_conn: Any, reads: ConnectionReads
    ) -> None:
        token = sandbox.issue_token()
        jobmojito_conn(password=token)
        sensor = InterviewStateSensor(task_id="wait", position_id=POSITION, status="completed")
        assert not sensor.poke({}).is_done
        sandbox.revoke_token(token)

        with pytest.raises(JobMojitoAuthError, match="401") as raised:
            sensor.poke({})

        assert token not in str(raised.value)
        assert answered(sandbox) == [200, 401]  # not sent again unchanged
        assert reads.sync == [CONN, CONN]


class TestSignInMode:
    def test_a_changed_password_is_signed_in_with_at_once_though_the_old_one_was_just_refused(
        self, sandbox: Any, jobmojito_conn: Any
    ) -> None:
        jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD)
        hook = JobMojitoHook(CONN)
        hook.get_interview(POSITION)
        # The user changes the password, signs every session out, and updates the connection.
        sandbox.change_password("the rotated password")
        sandbox.revoke_sessions()
        jobmojito_conn(login=DEFAULT_EMAIL, password="the rotated password")

        assert hook.get_interview(POSITION)["status"] == "active"

        # The 401 made the client sign in again with the password it had (refused, and that
        # failure remembered on the host for those credentials); the connection read again gave
        # the new one, which was tried at once, not held back by that memory.
        assert answered(sandbox) == [200, 401, 200]
        assert sandbox.sign_ins() == {"total": 3, "succeeded": 2, "failed": 1, "refused": 0}

    def test_the_token_of_replaced_credentials_is_forgotten_on_the_host_and_in_the_process(
        self, sandbox: Any, jobmojito_conn: Any
    ) -> None:
        jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD)
        hook = JobMojitoHook(CONN)
        hook.get_interview(POSITION)
        old = hook.endpoints.calls.tokens.account
        assert old is not None
        host = configured()
        assert host is not None
        assert SIGN_IN_CACHE.get(old) is not None
        assert host.get(old) is not None
        sandbox.change_password("the rotated password")  # its sessions are still valid
        jobmojito_conn(login=DEFAULT_EMAIL, password="the rotated password")

        assert hook.refresh_connection() is True

        assert (SIGN_IN_CACHE.get(old), host.get(old)) == (None, None)
        hook.get_interview(POSITION)
        assert sandbox.sign_ins()["succeeded"] == 2

    def test_another_extra_with_the_same_credentials_keeps_the_token(
        self, sandbox: Any, jobmojito_conn: Any
    ) -> None:
        jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD)
        hook = JobMojitoHook(CONN)
        hook.get_interview(POSITION)
        jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD, extra={"timeout": 7})

        assert hook.refresh_connection() is True
        assert hook.settings.timeout == 7.0
        hook.get_interview(POSITION)
        assert sandbox.sign_ins()["total"] == 1


class TestAsync:
    def test_a_call_refused_after_a_rotation_reads_the_connection_again_and_is_made_once_more(
        self, sandbox: Any, jobmojito_conn: Any, reads: ConnectionReads
    ) -> None:
        old = sandbox.issue_token()
        jobmojito_conn(password=old)
        hook = JobMojitoHook(CONN)

        async def scenario() -> list[str | None]:
            before = await hook.aget_interview(POSITION)
            rotate_token(sandbox, jobmojito_conn, old)
            after = await hook.aget_interview(POSITION)
            page = await hook.alist_interviews(limit=1)
            await hook.aclose()
            return [before["status"], after["status"], page["data"][0]["status"]]

        assert asyncio.run(scenario()) == ["active"] * 3
        assert answered(sandbox) == [200, 401, 200]
        assert answered(sandbox, LIST) == [200]
        assert reads.asynchronous == [CONN, CONN]

    def test_pages_refused_before_the_first_are_read_with_the_rotated_connection(
        self, sandbox: Any, jobmojito_conn: Any, reads: ConnectionReads
    ) -> None:
        old = sandbox.issue_token()
        jobmojito_conn(password=old)
        hook = JobMojitoHook(CONN)

        async def scenario() -> list[Any]:
            await hook.alist_interviews(limit=1)
            rotate_token(sandbox, jobmojito_conn, old)
            pages = [page async for page in hook.aiter_interview_pages()]
            await hook.aclose()
            return pages

        [page] = asyncio.run(scenario())
        assert [row["id"] for row in page["data"]] == [POSITION]
        assert answered(sandbox, LIST) == [200, 401, 200]
        assert reads.asynchronous == [CONN, CONN]

    def test_a_refused_call_reads_the_connection_again_though_a_read_from_before_the_rotation_is_under_way(
        self, sandbox: Any, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import airflow_provider_jobmojito.hooks.jobmojito as module

        old = sandbox.issue_token()
        jobmojito_conn(password=old)
        hook = JobMojitoHook(CONN)
        read = module._get_async_connection
        held: dict[str, asyncio.Event] = {}

        async def slow_read(conn_id: str) -> Any:
            conn = await read(conn_id)  # the connection as it is now...
            gate = held.pop("gate", None)
            if gate is not None:  # ...handed over later, as a slow supervisor round trip would
                held["reading"].set()
                await gate.wait()
            return conn

        monkeypatch.setattr(module, "_get_async_connection", slow_read)

        async def scenario() -> str:
            await hook.aget_interview(POSITION)
            held["gate"], held["reading"], refused = asyncio.Event(), asyncio.Event(), asyncio.Event()
            gate = held["gate"]
            # A board's round reads the connection: the old token, handed over late.
            round_ = asyncio.create_task(hook.arefresh_connection())
            await held["reading"].wait()
            rotate_token(sandbox, jobmojito_conn, old)
            after_refusal = hook._arefreshed_after_refusal

            async def refusal_seen(endpoints: Any) -> Any:
                # The refused call asks for a read now, while the round's is under way; it goes on
                # (no I/O) to wait for the hook's lock before this test's task runs again.
                refused.set()
                return await after_refusal(endpoints)

            monkeypatch.setattr(hook, "_arefreshed_after_refusal", refusal_seen)
            call = asyncio.create_task(hook.aget_interview(POSITION))
            await refused.wait()
            gate.set()
            status: str = (await call)["status"]
            await round_
            await hook.aclose()
            return status

        assert asyncio.run(scenario()) == "active"
        assert answered(sandbox) == [200, 401, 200]

    def test_callers_refreshing_together_share_one_read(
        self, sandbox: Any, jobmojito_conn: Any, reads: ConnectionReads
    ) -> None:
        jobmojito_conn()
        hook = JobMojitoHook(CONN)

        async def scenario() -> list[bool]:
            first = await asyncio.gather(*(hook.arefresh_connection() for _ in range(5)))
            again = await asyncio.gather(*(hook.arefresh_connection() for _ in range(5)))
            return [*first, *again]

        assert asyncio.run(scenario()) == [False] * 10
        assert reads.asynchronous == [CONN, CONN]  # the first use, then one for the five together

    def test_a_connection_that_cannot_be_read_again_leaves_the_hook_reading_with_it_and_warns_once(
        self,
        sandbox: Any,
        jobmojito_conn: Any,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        token = sandbox.issue_token()
        jobmojito_conn(password=token)
        hook = JobMojitoHook(CONN)
        # A standard logger of its own: Airflow 3's is structlog, which caplog does not see.
        hook._log = logging.getLogger("tests.rotation.hook")

        async def scenario() -> list[Any]:
            await hook.aget_interview(POSITION)
            monkeypatch.delenv(f"AIRFLOW_CONN_{CONN.upper()}")  # deleted, to be added again
            changed = [await hook.arefresh_connection() for _ in range(3)]
            status = (await hook.aget_interview(POSITION))["status"]
            await hook.aclose()
            return [*changed, status]

        with caplog.at_level(logging.WARNING, logger="tests.rotation.hook"):
            assert asyncio.run(scenario()) == [False, False, False, "active"]
        warnings = [r.getMessage() for r in caplog.records if r.name == "tests.rotation.hook"]
        assert len(warnings) == 1
        assert warnings[0].startswith(f"Could not read connection '{CONN}' again (")
        assert token not in warnings[0]
