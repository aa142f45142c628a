"""The asynchronous driver: carries out the client's plans on an event loop, over httpx.

The twin of :mod:`~airflow_provider_jobmojito.client`, deciding nothing either: it sends through
an :class:`~airflow_provider_jobmojito.wire.AsyncTransport`, sleeps with ``asyncio.sleep``, and
never blocks the loop: what may block (the host's token cache, Airflow 3's secret masker, which
waits for the supervisor) runs in a worker thread. It takes the same locks as the sync driver (the
account's lock in this process and on this host), so that a worker and a triggerer on one host
sign in once between them. Those are waited for in threads of their own (:func:`lock_waiters`),
never in the loop's default pool, which the holder needs to finish its sign-in; a driver's
coroutines queue for them on the loop first, so that one thread per driver and account waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_jobmojito.masking import mask
from airflow_provider_jobmojito.plan import Blocking, Emit, Exclusive, Run, Secret, Send, Wait
from airflow_provider_jobmojito.wire import NoAnswer

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable

    from airflow_provider_jobmojito.plan import Plan, Step
    from airflow_provider_jobmojito.wire import Answer, AsyncTransport

T = TypeVar("T")

#: Threads of a process that may wait for sign-in locks at once; more waiters queue for them.
LOCK_WAITING_THREADS = 4


class AsyncJobMojitoClient:
    """Runs plans on an event loop: ``await client.run(endpoints.get_position(position_id))``.

    :param transport: sends one attempt (httpx).
    """

    def __init__(self, transport: AsyncTransport) -> None:
        self.transport = transport
        #: How retries wait; tests replace it to record the backoff without sleeping.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._turns: dict[Hashable, asyncio.Lock] = {}

    async def run(self, plan: Plan[T], *, on_secret: Callable[[str], None] = mask) -> T:
        """Carry ``plan`` out and return its result (or raise its error).

        :param on_secret: registers a secret the API sent (called in a worker thread).
        """
        run = Run(plan)
        for step in run:
            run.answer(await self._carry_out(step, on_secret))
        return run.result  # type: ignore[return-value]

    async def pages(self, plan: Plan[None]) -> AsyncGenerator[Any, None]:
        """Carry ``plan`` out, yielding what it emits (pages) as the caller asks for them."""
        run = Run(plan)
        for step in run:
            if isinstance(step, Emit):
                yield step.item
            else:
                run.answer(await self._carry_out(step, mask))

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self.transport.aclose()

    async def _carry_out(self, step: Step, on_secret: Callable[[str], None]) -> Any:
        if isinstance(step, Send):
            return await self._send(step)
        if isinstance(step, Wait):
            await self.sleep(step.seconds)
            return step.stop is not None and step.stop.is_set()
        if isinstance(step, Blocking):
            return await asyncio.to_thread(step.function, *step.args)
        if isinstance(step, Secret):
            return await asyncio.to_thread(on_secret, step.value)
        if isinstance(step, Exclusive):
            async with held(self._turn(step.account), step.locks()):
                return await self.run(step.plan, on_secret=on_secret)
        if isinstance(step, Emit):  # emitted by a plan run for its result: not asked for
            return None
        raise TypeError(f"A plan yielded {type(step).__name__}, which is not a step.")

    async def _send(self, step: Send) -> Answer | NoAnswer:
        try:
            return await self.transport.send(step.request, token=step.token, timeout=step.timeout)
        except NoAnswer as no_answer:
            return no_answer

    def _turn(self, account: Hashable) -> asyncio.Lock:
        """This loop's queue for the account's locks (created on the loop, at first use)."""
        turn = self._turns.get(account)
        if turn is None:
            turn = self._turns[account] = asyncio.Lock()
        return turn


@contextlib.asynccontextmanager
async def held(turn: asyncio.Lock, locks: contextlib.AbstractContextManager[None]) -> AsyncIterator[None]:
    """Hold ``locks``, taken in a lock-waiting thread once this coroutine has the ``turn``.

    Taking them may block (another thread or process signs in); releasing never does, so it
    happens on the loop. The thread is one of :func:`lock_waiters`, never the loop's default pool,
    which the holder needs for the rest of its sign-in. A cancel while the thread waits cannot stop
    the thread: the turn is kept and the locks are released as soon as it gets them, so a cancelled
    trigger neither leaves an account locked nor lets a second thread of this loop wait for it.
    """
    await turn.acquire()
    loop = asyncio.get_running_loop()
    taking = lock_waiters().submit(locks.__enter__)
    try:
        await asyncio.shield(asyncio.wrap_future(taking))
    except BaseException:
        # Run in the thread that gets the locks, not on the loop: a loop that has ended would
        # never run it, and the locks would stay held for the process.
        taking.add_done_callback(lambda taken: _let_go(taken, locks, loop, turn))
        raise
    try:
        yield
    finally:
        locks.__exit__(None, None, None)
        turn.release()


def _let_go(
    taken: Future[None],
    locks: contextlib.AbstractContextManager[None],
    loop: asyncio.AbstractEventLoop,
    turn: asyncio.Lock,
) -> None:
    """After a cancel: release what the waiting thread got, then give the turn back on the loop."""
    if not taken.cancelled() and taken.exception() is None:
        locks.__exit__(None, None, None)
    with contextlib.suppress(RuntimeError):  # the loop has ended, and its turns with it
        loop.call_soon_threadsafe(turn.release)


_WAITERS: dict[int, ThreadPoolExecutor] = {}


def lock_waiters() -> ThreadPoolExecutor:
    """This process's threads for waiting on sign-in locks (made anew in a forked child, which
    inherits none of its parent's threads)."""
    pid = os.getpid()
    waiters = _WAITERS.get(pid)
    if waiters is None:
        _WAITERS.clear()
        waiters = _WAITERS[pid] = ThreadPoolExecutor(
            max_workers=LOCK_WAITING_THREADS, thread_name_prefix="jobmojito-sign-in-lock"
        )
    return waiters
