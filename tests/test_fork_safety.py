"""A hook, and the package's module state, used on both sides of an ``os.fork()``: real forks.

Celery's prefork pool, ``multiprocessing`` with fork and Airflow 3's task supervisor all fork
processes that inherit live objects. A keep-alive connection inherited by two processes is one
socket read by both: each could read the other's answer (another position's signing key).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_jobmojito.auth import SIGN_IN_CACHE
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import SandboxServer

SIGN_IN = "/auth/v1/token"
EMAIL, PASSWORD = "fork@example.com", "fork-password-0123"
#: How long a child may take before the test calls it hung (it needs well under a second).
CHILD_DEADLINE = 120.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def fork(child: Callable[[], Any]) -> tuple[int, int]:
    """Run ``child`` in a forked process; return its pid and the read end of its result pipe."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process may deadlock the child: that risk
        # is what these tests are about.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            outcome = {"ok": True, "value": child()}
            status = 0
        except BaseException as error:
            outcome = {"ok": False, "value": f"{type(error).__name__}: {error}"}
        finally:
            try:
                os.write(write_end, json.dumps(outcome).encode())
            finally:
                os._exit(status)
    os.close(write_end)
    return pid, read_end


def result_of(pid: int, read_end: int) -> Any:
    """The child's result; kills it and fails the test if it is still running at the deadline."""
    deadline = time.monotonic() + CHILD_DEADLINE
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung for {CHILD_DEADLINE:g} s")
        time.sleep(0.05)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = json.loads(pipe.read() or b'{"ok": false, "value": "no result"}')
    assert outcome["ok"], outcome["value"]
    assert os.waitstatus_to_exitcode(status) == 0
    return outcome["value"]


def enable_all(hook: JobMojitoHook, ids: list[str]) -> dict[str, str]:
    results = hook.set_interview_states(ids, is_embedded=True, max_workers=16)
    return {result.position_id: result.response["embed_id"] for result in results if result.response}


def test_parent_and_child_each_get_their_own_answers_after_a_fork(
    jobmojito_sandbox: Any, jobmojito_conn: Any
) -> None:
    parent_ids = [str(uuid.uuid4()) for _ in range(200)]
    child_ids = [str(uuid.uuid4()) for _ in range(200)]
    warm_ids = [str(uuid.uuid4()) for _ in range(64)]
    jobmojito_sandbox.seed([{"id": pid, "status": "active"} for pid in [*parent_ids, *child_ids, *warm_ids]])
    hook = JobMojitoHook(jobmojito_conn())
    # Up to 16 keep-alive connections now sit in the hook's pool, for both processes to inherit.
    hook.set_interview_states(warm_ids, status="active", max_workers=16)

    pid, read_end = fork(lambda: enable_all(hook, child_ids))
    seen_by_parent = enable_all(hook, parent_ids)  # at the same time as the child
    seen_by_child = result_of(pid, read_end)

    for seen in (seen_by_parent, seen_by_child):
        for position_id, embed_id in seen.items():
            assert embed_id == jobmojito_sandbox.position(position_id)["embed_id"]
    assert set(seen_by_child) == set(child_ids)


def test_a_fork_while_another_thread_signs_in_does_not_hang_the_child(jobmojito_conn: Any) -> None:
    position = str(uuid.uuid4())
    with SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": position, "status": "draft"}])
        conn_id = jobmojito_conn(host=server.api_url, login=EMAIL, password=PASSWORD)
        server.add_fault("delay", seconds=3, count=1, path=SIGN_IN)  # a slow sign-in holds the lock
        signing_in = threading.Thread(
            target=lambda: JobMojitoHook(conn_id).set_interview_state(position, status="active")
        )
        signing_in.start()
        deadline = time.monotonic() + 30
        account_lock = SIGN_IN_CACHE.lock_for(SIGN_IN_CACHE.key(server.url, EMAIL, PASSWORD))
        while not account_lock.locked():
            assert time.monotonic() < deadline, "the sign-in never started"
            time.sleep(0.01)

        pid, read_end = fork(lambda: JobMojitoHook(conn_id).set_interview_state(position, status="archived"))
        assert result_of(pid, read_end) == {"success": True}
        signing_in.join()
        # The child waited for the parent's sign-in, then took its token from the host's cache.
        assert [r["path"] for r in server.requests_log()].count(SIGN_IN) == 1
