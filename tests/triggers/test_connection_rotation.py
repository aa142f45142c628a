"""Triggers of one long-lived event loop (a triggerer) while a connection's token or password is
rotated: new and waiting triggers follow the connection without a restart, one sign-in per account.

Over real HTTP to the sandbox, which revokes sessions and changes the password as a user would.
Rounds after a board's first start when the test says (:class:`Rounds`); sign-ins are counted by
the sandbox, connection reads where Airflow answers them (:mod:`tests.rotation`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from airflow_provider_jobmojito.sandbox import DEFAULT_EMAIL, DEFAULT_PASSWORD
from airflow_provider_jobmojito.triggers.jobmojito import SHARED_POLLS, InterviewStateTrigger, _StatusBoard
from tests.rotation import ConnectionReads, count_connection_reads
from tests.triggers.test_jobmojito import LIST, first_event, until

CONN = "jobmojito_default"
NEW_PASSWORD = "the rotated password"


class Rounds:
    """A board's rounds after its first start when the test says (:meth:`next`), so that the test
    changes credentials between two rounds, never during one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._sleeping: dict[_StatusBoard, asyncio.Event] = {}

        async def sleep(board: _StatusBoard, seconds: float) -> None:
            gate = self._sleeping[board] = asyncio.Event()
            await gate.wait()

        monkeypatch.setattr(_StatusBoard, "sleep", sleep)

    async def between(self, board: _StatusBoard, waits: int = 1) -> None:
        """Return once ``board`` sleeps after a round, and ``waits`` waits are registered for the
        next (a waiter takes its round's answer, then asks for the next)."""
        await until(lambda: board in self._sleeping and sum(board._watchers.values()) == waits)

    async def next(self, board: _StatusBoard, waits: int = 1) -> None:
        """Start ``board``'s next round, once it is :meth:`between` two."""
        await self.between(board, waits)
        self._sleeping.pop(board).set()


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> Rounds:
    return Rounds(monkeypatch)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> ConnectionReads:
    return count_connection_reads(monkeypatch)


@pytest.fixture
def active(jobmojito_sandbox: Any) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(40)]
    jobmojito_sandbox.seed([{"id": pid, "status": "active"} for pid in ids])
    return ids


def waiting_for(position_id: str, status: str = "completed", **kwargs: Any) -> InterviewStateTrigger:
    return InterviewStateTrigger(position_id=position_id, status=[status], poll_interval=0.05, **kwargs)


def board(hook_params: dict[str, Any] | None = None) -> _StatusBoard:
    """The running loop's board of the triggers of :func:`waiting_for`."""
    return SHARED_POLLS.board(CONN, hook_params or {}, 0.05)


def answered(sandbox: Any) -> list[int]:
    """What the list answered, call by call."""
    return [r["status"] for r in sandbox.requests_log() if r["path"] == LIST]


def rotate_token(sandbox: Any, jobmojito_conn: Any, old: str) -> None:
    """What a user does: a new token in the connection, then the old one revoked."""
    jobmojito_conn(password=sandbox.issue_token())
    sandbox.revoke_token(old)


def test_a_trigger_started_after_the_token_was_rotated_succeeds_where_others_used_the_old_one(
    jobmojito_sandbox: Any, jobmojito_conn: Any, active: list[str], reads: ConnectionReads
) -> None:
    old = jobmojito_sandbox.issue_token()
    jobmojito_conn(password=old)

    async def scenario() -> list[dict[str, Any]]:
        before = await first_event(waiting_for(active[0], "active"))
        rotate_token(jobmojito_sandbox, jobmojito_conn, old)
        after = await first_event(waiting_for(active[1], "active"))  # same loop, same board
        return [before, after]

    events = asyncio.run(scenario())
    assert [event["outcome"] for event in events] == ["success", "success"]
    # The second round read the connection first: the revoked token was never sent again.
    assert answered(jobmojito_sandbox) == [200, 200]
    assert reads.asynchronous == [CONN, CONN]


def test_a_waiting_trigger_whose_token_is_revoked_and_rotated_recovers(
    jobmojito_sandbox: Any, jobmojito_conn: Any, active: list[str], reads: ConnectionReads, rounds: Rounds
) -> None:
    old = jobmojito_sandbox.issue_token()
    jobmojito_conn(password=old)

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first_event(waiting_for(active[0])))
        await rounds.between(board())
        rotate_token(jobmojito_sandbox, jobmojito_conn, old)
        jobmojito_sandbox.admin_set_status(active[0], "completed")
        await rounds.next(board())
        return await waiting

    assert asyncio.run(scenario())["outcome"] == "success"
    assert answered(jobmojito_sandbox) == [200, 200]
    assert reads.asynchronous == [CONN, CONN]


def test_a_token_revoked_but_left_in_the_connection_ends_the_wait_after_one_more_read(
    jobmojito_sandbox: Any, jobmojito_conn: Any, active: list[str], reads: ConnectionReads, rounds: Rounds
) -> None:
    token = jobmojito_sandbox.issue_token()
    jobmojito_conn(password=token)

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first_event(waiting_for(active[0])))
        await rounds.between(board())
        jobmojito_sandbox.revoke_token(token)
        await rounds.next(board())
        return await waiting

    event = asyncio.run(scenario())
    assert (event["outcome"], event["status"], event["transient"]) == ("error", "active", False)
    assert "401" in event["message"]
    assert token not in event["message"]
    assert answered(jobmojito_sandbox) == [200, 401]
    # Each round's read, and one after the refusal: the connection had not changed.
    assert reads.asynchronous == [CONN, CONN, CONN]


def test_triggers_of_one_account_sign_in_once_and_read_the_connection_once_a_round(
    jobmojito_sandbox: Any, jobmojito_conn: Any, active: list[str], reads: ConnectionReads, rounds: Rounds
) -> None:
    jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD)
    # Two hook_params: two hooks, two boards, one account.
    triggers = [
        waiting_for(pid, hook_params={"max_retries": 2} if i % 2 else {}) for i, pid in enumerate(active)
    ]

    async def scenario() -> tuple[list[dict[str, Any]], list[int]]:
        waiting = [asyncio.ensure_future(first_event(trigger)) for trigger in triggers]
        boards = [board(), board({"max_retries": 2})]
        for _ in range(2):  # rounds 2 and 3
            for each in boards:
                await rounds.next(each, waits=20)
        for each in boards:
            await rounds.between(each, waits=20)
        for pid in active:
            jobmojito_sandbox.admin_set_status(pid, "completed")
        for each in boards:
            await rounds.next(each, waits=20)  # the fourth reads them completed
        events = await asyncio.gather(*waiting)
        return events, [each.rounds for each in boards]

    events, board_rounds = asyncio.run(scenario())
    assert {event["outcome"] for event in events} == {"success"}
    assert board_rounds == [4, 4]
    assert jobmojito_sandbox.sign_ins()["total"] == 1
    assert answered(jobmojito_sandbox) == [200] * 8
    assert reads.asynchronous == [CONN] * 8  # one a round of each board, nothing more


def test_after_a_password_rotation_waiting_and_new_triggers_sign_in_once_with_the_new_one(
    jobmojito_sandbox: Any, jobmojito_conn: Any, active: list[str], rounds: Rounds
) -> None:
    jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD)

    async def scenario() -> list[dict[str, Any]]:
        waiting = asyncio.ensure_future(first_event(waiting_for(active[0])))
        await rounds.between(board())
        # The user changes the password, signs every session out, and updates the connection.
        jobmojito_sandbox.change_password(NEW_PASSWORD)
        jobmojito_sandbox.revoke_sessions()
        jobmojito_conn(login=DEFAULT_EMAIL, password=NEW_PASSWORD)
        for pid in active[:2]:
            jobmojito_sandbox.admin_set_status(pid, "completed")
        # A new trigger with other hook_params (another hook of the account), and the next round.
        new = asyncio.ensure_future(first_event(waiting_for(active[1], hook_params={"max_retries": 2})))
        await rounds.next(board())
        return [await waiting, await new]

    events = asyncio.run(scenario())
    assert [event["outcome"] for event in events] == ["success", "success"]
    # Once with each password: the old one before, the new one for both hooks; none refused.
    assert jobmojito_sandbox.sign_ins() == {"total": 2, "succeeded": 2, "failed": 0, "refused": 0}
    assert set(answered(jobmojito_sandbox)) == {200}


def test_a_password_rotated_after_a_refused_sign_in_is_tried_at_once_by_the_next_trigger(
    jobmojito_sandbox: Any, jobmojito_conn: Any, active: list[str]
) -> None:
    # The password was changed in JobMojito, not yet in the connection.
    jobmojito_sandbox.change_password(NEW_PASSWORD)
    jobmojito_conn(login=DEFAULT_EMAIL, password=DEFAULT_PASSWORD)

    async def scenario() -> list[dict[str, Any]]:
        refused = await first_event(waiting_for(active[0], "active"))
        jobmojito_conn(login=DEFAULT_EMAIL, password=NEW_PASSWORD)
        return [refused, await first_event(waiting_for(active[1], "active"))]

    refused, after = asyncio.run(scenario())
    assert (refused["outcome"], refused["transient"]) == ("error", False)
    assert "Invalid login credentials" in refused["message"]
    assert DEFAULT_PASSWORD not in refused["message"]
    assert after["outcome"] == "success"
    # The refusal is remembered on the host for those credentials only: the new password was
    # sent at once, not held back for the memory's 60 s.
    assert jobmojito_sandbox.sign_ins() == {"total": 2, "succeeded": 1, "failed": 1, "refused": 0}


def test_a_connection_deleted_and_added_again_with_a_new_token_does_not_end_a_wait(
    jobmojito_sandbox: Any,
    jobmojito_conn: Any,
    active: list[str],
    rounds: Rounds,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = jobmojito_sandbox.issue_token()
    jobmojito_conn(password=old)

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first_event(waiting_for(active[0])))
        await rounds.between(board())
        monkeypatch.delenv(f"AIRFLOW_CONN_{CONN.upper()}")  # `airflow connections delete`
        await rounds.next(board())  # read with the token it has, as the connection cannot be read
        await rounds.between(board())
        rotate_token(jobmojito_sandbox, jobmojito_conn, old)  # `airflow connections add`
        jobmojito_sandbox.admin_set_status(active[0], "completed")
        await rounds.next(board())
        return await waiting

    assert asyncio.run(scenario())["outcome"] == "success"
    assert answered(jobmojito_sandbox) == [200, 200, 200]
