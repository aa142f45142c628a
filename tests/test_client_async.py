"""The async driver over real HTTP to the sandbox: the sync driver's behaviour, on an event loop.

Same plans, so same requests, waits and errors; what is its own is tested here: httpx as the
transport, worker threads for what may block, and the sign-in locks it shares with the sync driver.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from airflow_provider_jobmojito.auth import SIGN_IN_CACHE
from airflow_provider_jobmojito.exceptions import JobMojitoError
from airflow_provider_jobmojito.sandbox import SandboxServer
from airflow_provider_jobmojito.validation import StateChange
from tests.drivers import async_client, endpoints_for, log_of, run_async, sync_client

POSITION = "6d8f0b2c-4e5a-4b7c-9d0e-1f2a3b4c5d6e"
SET_STATE = "/functions/v1/job-interview-set-state"
SIGN_IN = "/auth/v1/token"
EMAIL, PASSWORD = "async@example.com", "async-password-0123"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    return jobmojito_sandbox


def test_sends_a_body_and_backs_off_as_the_sync_driver_does(sandbox: Any) -> None:
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token())
    sandbox.add_fault("status", status=503, count=3, path=SET_STATE)

    async def scenario() -> tuple[Any, list[float]]:
        client, waits = async_client()
        try:
            return await client.run(endpoints.set_state(StateChange.build(POSITION, "active"))), waits
        finally:
            await client.aclose()

    answer, waits = asyncio.run(scenario())
    assert answer == {"success": True}
    assert waits == [0.5, 1.0, 2.0]
    assert log_of(endpoints).lines[0].endswith("answered 503 (attempt 1 of 6); retrying in 0.50 s.")
    assert sandbox.position(POSITION)["status"] == "active"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "Bad request."}),
        (401, {"error": "Invalid token."}),
        (403, {"error": "Forbidden."}),
        (404, {"error": "Not found."}),
        (422, {"error": "Bad status.", "name": "status"}),
        (500, {"error": "Boom."}),
        (502, {"error": "Bad gateway."}),
    ],
)
def test_the_same_answer_gives_the_same_error_from_either_driver(
    sandbox: Any, status: int, body: Any
) -> None:
    errors: list[JobMojitoError] = []
    endpoints = endpoints_for(sandbox.api_url, password=sandbox.issue_token(), max_retries=0)
    for run in (sync_client()[0].run, run_async):
        sandbox.add_fault("status", status=status, body=body, count=1, path=SET_STATE)
        with pytest.raises(JobMojitoError) as raised:
            run(endpoints.set_state(StateChange.build(POSITION, "active")))
        errors.append(raised.value)
    from_sync, from_async = errors
    assert type(from_sync) is type(from_async)
    assert str(from_sync) == str(from_async)
    assert from_sync.transient == from_async.transient


def test_coroutines_finding_no_token_together_sign_in_once() -> None:
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        endpoints = endpoints_for(server.api_url, login=EMAIL, password=PASSWORD)

        async def scenario() -> list[Any]:
            client, _ = async_client()
            try:
                return await asyncio.gather(
                    *(client.run(endpoints.get_position(POSITION)) for _ in range(20))
                )
            finally:
                await client.aclose()

        assert len(asyncio.run(scenario())) == 20
        assert [r["path"] for r in server.requests_log()].count(SIGN_IN) == 1


class WatchedLock:
    """A lock that tells how many callers are waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self.waiting = 0

    def __enter__(self) -> None:
        with self._changed:
            self.waiting += 1
            self._changed.notify_all()
        self._lock.acquire()
        with self._changed:
            self.waiting -= 1
            self._changed.notify_all()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def hold(self) -> None:
        self._lock.acquire()

    def let_go(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def free_within(self, seconds: float) -> bool:
        """Whether the lock could be taken (and was let go) within ``seconds``."""
        if not self._lock.acquire(timeout=seconds):
            return False
        self._lock.release()
        return True

    def wait_for(self, waiting: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.waiting == waiting, timeout=60)


def test_a_worker_thread_and_a_coroutine_share_the_accounts_sign_in_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = WatchedLock()
    monkeypatch.setattr(SIGN_IN_CACHE, "lock_for", lambda key: lock)
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        endpoints = endpoints_for(server.api_url, login=EMAIL, password=PASSWORD)
        lock.hold()  # both find no token, and wait for the lock
        results: list[Any] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(sync_client()[0].run(endpoints.get_position(POSITION)))
            ),
            threading.Thread(target=lambda: results.append(run_async(endpoints.get_position(POSITION)))),
        ]
        for thread in threads:
            thread.start()
        lock.wait_for(waiting=2)
        lock.let_go()
        for thread in threads:
            thread.join(timeout=60)
        assert len(results) == 2
        # Whichever got the lock first signed in; the other found its token.
        assert [r["path"] for r in server.requests_log()].count(SIGN_IN) == 1


def test_a_coroutine_cancelled_while_waiting_for_the_lock_leaves_it_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = WatchedLock()
    monkeypatch.setattr(SIGN_IN_CACHE, "lock_for", lambda key: lock)
    endpoints = endpoints_for("http://127.0.0.1:9/functions/v1", login=EMAIL, password=PASSWORD)
    lock.hold()

    async def scenario() -> None:
        client, _ = async_client()
        task = asyncio.ensure_future(client.run(endpoints.get_position(POSITION)))
        await asyncio.to_thread(lock.wait_for, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        lock.let_go()  # the worker thread takes the lock now, and lets it go at once
        await asyncio.to_thread(lock.wait_for, 0)
        await client.aclose()

    asyncio.run(scenario())
    # The thread that got the lock after the cancel let it go, even though the loop had ended:
    # a sign-in can take it again.
    assert lock.free_within(60)


def test_more_drivers_of_one_account_than_the_loops_threads_sign_in_without_a_deadlock() -> None:
    # Waiting for the account's lock in the loop's default pool parked every thread of it, and the
    # holder never got one back to finish signing in (1.1.0 before release, found in review).
    drivers = min(32, (os.cpu_count() or 1) + 4) + 1  # the default pool's size, and one more
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        endpoints = endpoints_for(server.api_url, login=EMAIL, password=PASSWORD)

        async def scenario() -> list[Any]:
            clients = [async_client()[0] for _ in range(drivers)]
            try:
                plans = [endpoints.get_position(POSITION) for _ in clients]
                runs = (client.run(plan) for client, plan in zip(clients, plans, strict=True))
                return await asyncio.wait_for(asyncio.gather(*runs), timeout=60)
            finally:
                for client in clients:
                    await client.aclose()

        assert len(asyncio.run(scenario())) == drivers
        assert [r["path"] for r in server.requests_log()].count(SIGN_IN) == 1


def test_a_cancelled_caller_keeps_its_place_until_its_thread_lets_the_lock_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = WatchedLock()
    monkeypatch.setattr(SIGN_IN_CACHE, "lock_for", lambda key: lock)
    endpoints = endpoints_for("http://127.0.0.1:9/functions/v1", login=EMAIL, password=PASSWORD)
    lock.hold()  # a worker thread of this process is signing in

    async def scenario() -> int:
        client, _ = async_client()
        task = asyncio.ensure_future(client.run(endpoints.get_position(POSITION)))
        await asyncio.to_thread(lock.wait_for, 1)  # its thread waits for the lock
        for _ in range(3):  # cancelled and run again, as a trigger may be
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            task = asyncio.ensure_future(client.run(endpoints.get_position(POSITION)))
            for _ in range(10):
                await asyncio.sleep(0)  # let it reach its place in the queue
        waiting = lock.waiting
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        lock.let_go()
        await asyncio.to_thread(lock.wait_for, 0)
        await client.aclose()
        return waiting

    assert asyncio.run(scenario()) == 1  # one thread waited, however often the caller came back
