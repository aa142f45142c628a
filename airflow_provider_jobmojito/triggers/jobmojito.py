"""Triggers that wait for JobMojito: a position reaching a status, and positions entering one.

* :class:`InterviewStateTrigger` backs ``InterviewStateSensor(deferrable=True)``.
* :class:`InterviewStateChangeTrigger` is a ``BaseEventTrigger`` for an ``AssetWatcher``
  (Airflow 3.0 and later): it starts DAG runs when positions enter a status.

Both read the API through the hook's async client (:mod:`~airflow_provider_jobmojito.client_async`):
the sync hook's retry policy, error mapping and token provider, on httpx. The triggers of one
connection in one event loop share one hook, so one connection read, one sign-in and one pool of
connections; sensors waiting with the same poll interval share one list call per interval
(:class:`_StatusBoard`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jobmojito.exceptions import (
    JobMojitoError,
    JobMojitoServerError,
    JobMojitoUnavailableError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.status import InterviewStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

#: Rows per page of ``merchant-interview-list``: the most the API gives.
PAGE_SIZE = 1000
#: Transient: the API is down or throttling; a wait goes on through these.
_TRANSIENT = (JobMojitoUnavailableError, JobMojitoServerError)


_HOOKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, JobMojitoHook]] = (
    weakref.WeakKeyDictionary()
)


def _shared_hook(conn_id: str, hook_params: dict[str, Any]) -> JobMojitoHook:
    """One hook per connection (and hook arguments) per event loop: triggers share its client."""
    hooks = _HOOKS.setdefault(asyncio.get_running_loop(), {})
    key = (conn_id, tuple(sorted(hook_params.items())))
    hook = hooks.get(key)
    if hook is None:
        hook = hooks[key] = JobMojitoHook(conn_id, **hook_params)
    return hook


class _StatusBoard:
    """Reads the status of every watched position with one list call per interval, for all.

    ``merchant-interview-list`` answers up to 1,000 positions a page, newest-updated first. A round
    pages until every watched position was seen (or the list ends); a position the list does not
    show (another ``type``, or hidden) is read with ``job-interview-get``, so it is still watched.

    :param hook: the shared hook of the connection.
    :param interval: seconds between rounds.
    """

    def __init__(self, hook: JobMojitoHook, interval: float) -> None:
        self.hook = hook
        self.interval = interval
        self._watchers: dict[str, int] = {}
        self._round: asyncio.Future[dict[str, str | None] | BaseException] | None = None
        self._ticker: asyncio.Task[None] | None = None
        #: API calls made, by endpoint: for the benchmark and the tests.
        self.calls = {"list": 0, "get": 0}

    @classmethod
    def of(cls, hook: JobMojitoHook, interval: float) -> _StatusBoard:
        boards: dict[float, _StatusBoard] = hook.__dict__.setdefault("_status_boards", {})
        board = boards.get(interval)
        if board is None:
            board = boards[interval] = cls(hook, interval)
        return board

    async def next_status(self, position_id: str) -> str | None:
        """The position's status as the next round reads it.

        :raises JobMojitoError: what the round's calls raised.
        """
        # Registered and given the next round's future together (no await between): the ticker
        # takes its snapshot of the watched ids and hands out a new future together too, so a
        # watcher is always read by the round it waits for.
        self._watchers[position_id] = self._watchers.get(position_id, 0) + 1
        try:
            if self._round is None:
                self._round = asyncio.get_running_loop().create_future()
            round_ = self._round
            if self._ticker is None or self._ticker.done():
                self._ticker = asyncio.get_running_loop().create_task(self._tick())
            outcome = await asyncio.shield(round_)
        finally:
            self._watchers[position_id] -= 1
            if not self._watchers[position_id]:
                del self._watchers[position_id]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome.get(position_id)

    async def _tick(self) -> None:
        # One round now (the first waiter's), then one per interval while anyone waits.
        await asyncio.sleep(0)  # let the triggers started together join the first round
        while self._watchers:
            round_, self._round = self._round, None  # who comes now waits for the next round
            watched = set(self._watchers)
            try:
                outcome: dict[str, str | None] | BaseException = await self._read(watched)
            except JobMojitoError as error:
                outcome = error
            except Exception as error:  # a bug or an odd answer: no waiter may hang on this round
                outcome = JobMojitoError(f"Reading the positions' statuses failed: {type(error).__name__}")
            if round_ is not None and not round_.done():
                round_.set_result(outcome)
            await asyncio.sleep(self.interval)

    async def _read(self, watched: set[str]) -> dict[str, str | None]:
        statuses: dict[str, str | None] = {}
        offset = 0
        while watched - statuses.keys():
            self.calls["list"] += 1
            page = await self.hook.alist_interviews(limit=PAGE_SIZE, offset=offset)
            rows = page.get("data") or []
            for row in rows:
                position_id = row.get("id") if isinstance(row, dict) else None
                if isinstance(position_id, str) and position_id in watched:
                    status = row.get("status")
                    statuses[position_id] = status if isinstance(status, str) else None
            pagination = page.get("pagination") or {}
            if not rows or not pagination.get("has_more"):
                break
            offset += len(rows)
        for position_id in watched - statuses.keys():
            self.calls["get"] += 1
            statuses[position_id] = (await self.hook.aget_interview(position_id)).get("status")
        return statuses


class InterviewStateTrigger(BaseTrigger):
    """Wait until a position's status is one of ``status`` (or one of ``failure_status``).

    Fires once: ``{"status": "success", "position_id", "position_status"}``, ``"failure"`` (a
    failure status was reached), ``"timeout"`` (``deadline`` passed) or ``"error"`` (a permanent
    API error, with its ``message``). Transient API errors are logged and the wait goes on.

    :param position_id: the position to watch (a canonical UUID).
    :param status: the statuses to wait for.
    :param failure_status: statuses that end the wait as a failure.
    :param jobmojito_conn_id: the Airflow connection.
    :param poll_interval: seconds between reads.
    :param deadline: POSIX time at which to give up, or ``None``.
    :param hook_params: keyword arguments for the hook.
    """

    def __init__(
        self,
        *,
        position_id: str,
        status: Iterable[str],
        failure_status: Iterable[str] = (),
        jobmojito_conn_id: str = "jobmojito_default",
        poll_interval: float = 60.0,
        deadline: float | None = None,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.position_id = position_id
        self.status = list(status)
        self.failure_status = list(failure_status)
        self.jobmojito_conn_id = jobmojito_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.hook_params = dict(hook_params or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "position_id": self.position_id,
                "status": self.status,
                "failure_status": self.failure_status,
                "jobmojito_conn_id": self.jobmojito_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "hook_params": self.hook_params,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        board = _StatusBoard.of(_shared_hook(self.jobmojito_conn_id, self.hook_params), self.poll_interval)
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                yield self._event("timeout")
                return
            try:
                status = await board.next_status(self.position_id)
            except _TRANSIENT as error:
                self.log.warning("Position %s: %s; still waiting.", self.position_id, error)
                continue
            except JobMojitoError as error:
                yield self._event("error", message=str(error))
                return
            if status in self.status:
                yield self._event("success", position_status=status)
                return
            if status in self.failure_status:
                yield self._event("failure", position_status=status)
                return
            self.log.info(
                "Position %s is %s; waiting for %s.", self.position_id, status, ", ".join(self.status)
            )

    def _event(self, outcome: str, **details: Any) -> TriggerEvent:
        return TriggerEvent({"status": outcome, "position_id": self.position_id, **details})  # type: ignore[no-untyped-call]


try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2: no event-driven scheduling
    BaseEventTrigger = None  # type: ignore[assignment,misc]


if BaseEventTrigger is not None:

    class InterviewStateChangeTrigger(BaseEventTrigger):
        """Fire once for each position that enters a watched status, for an ``AssetWatcher``.

        Fires on changes, never on states: positions already in a watched status when the watch
        starts do not fire, and a position fires again only after it left the statuses and came
        back (as seen by two polls; a round trip between two polls is not seen). Each poll lists
        the positions in the watched statuses (``merchant-interview-list``, paged by 1,000). A
        restarted triggerer starts a new watch: it does not replay old changes. Transient API
        errors are logged and the watch goes on; permanent ones (auth, configuration) end it.

        Event payload: ``{"position_id", "status", "updated_at"}``.

        :param status: the statuses to watch, one or a list.
        :param jobmojito_conn_id: the Airflow connection.
        :param poll_interval: seconds between polls.
        :param hook_params: keyword arguments for the hook.
        """

        def __init__(
            self,
            *,
            status: str | Iterable[str],
            jobmojito_conn_id: str = "jobmojito_default",
            poll_interval: float = 60.0,
            hook_params: dict[str, Any] | None = None,
        ) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.status = InterviewStatus.parse_many(status, param="status")
            self.jobmojito_conn_id = jobmojito_conn_id
            self.poll_interval = float(poll_interval)
            self.hook_params = dict(hook_params or {})

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (
                f"{type(self).__module__}.{type(self).__qualname__}",
                {
                    "status": self.status,
                    "jobmojito_conn_id": self.jobmojito_conn_id,
                    "poll_interval": self.poll_interval,
                    "hook_params": self.hook_params,
                },
            )

        async def run(self) -> AsyncIterator[TriggerEvent]:
            hook = _shared_hook(self.jobmojito_conn_id, self.hook_params)
            known: dict[str, str] | None = None
            while True:
                try:
                    current = await self._positions_in_watched_statuses(hook)
                except _TRANSIENT as error:
                    self.log.warning("Watching %s: %s; trying again.", ", ".join(self.status), error)
                else:
                    if known is None:
                        self.log.info(
                            "Watching %d position(s) now in %s for changes.",
                            len(current),
                            ", ".join(self.status),
                        )
                    else:
                        entered = [row for pid, row in current.items() if known.get(pid) != row["status"]]
                        for row in sorted(entered, key=lambda row: str(row.get("updated_at"))):
                            yield TriggerEvent(  # type: ignore[no-untyped-call]
                                {
                                    "position_id": row["id"],
                                    "status": row["status"],
                                    "updated_at": row.get("updated_at"),
                                }
                            )
                    known = {pid: row["status"] for pid, row in current.items()}
                await asyncio.sleep(self.poll_interval)

        async def _positions_in_watched_statuses(self, hook: JobMojitoHook) -> dict[str, dict[str, Any]]:
            rows: dict[str, dict[str, Any]] = {}
            for status in self.status:
                offset = 0
                while True:
                    page = await hook.alist_interviews(status=status, limit=PAGE_SIZE, offset=offset)
                    data = [
                        row
                        for row in page.get("data") or []
                        if isinstance(row, dict)
                        and isinstance(row.get("id"), str)
                        and isinstance(row.get("status"), str)
                    ]
                    for row in data:
                        rows[row["id"]] = row
                    if not data or not (page.get("pagination") or {}).get("has_more"):
                        break
                    offset += len(data)
            return rows


def __getattr__(name: str) -> Any:
    if name == "InterviewStateChangeTrigger":
        raise ImportError(
            "InterviewStateChangeTrigger needs Airflow 3.0 or later (BaseEventTrigger and AssetWatcher "
            "start DAG runs from events); this is Airflow 2. Use InterviewStateSensor in a scheduled "
            "DAG instead."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
