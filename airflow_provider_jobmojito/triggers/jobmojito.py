"""Triggers that wait for JobMojito: a position reaching a status, and positions entering one.

* :class:`InterviewStateTrigger` backs ``InterviewStateSensor(deferrable=True)``; its one event is
  a :class:`WaitOutcome`.
* :class:`InterviewStateChangeTrigger` is a ``BaseEventTrigger`` for an ``AssetWatcher``
  (Airflow 3.0 and later): it starts DAG runs when positions enter a status.

Both read the API through the hook's async client (:mod:`~airflow_provider_jobmojito.client_async`):
the sync hook's retry policy, error mapping and token provider, on httpx. What the triggers of one
event loop share is held by :data:`SHARED_POLLS` (a :class:`SharedPolls`): one hook per connection
(and hook params), so one pool of connections, and one sign-in per account (the process's token
cache); and one :class:`_StatusBoard` per poll interval, so sensors waiting with the same interval
share one list call per interval. A board reads its connection again at the start of each round,
so a rotated token or password is used from the next round, without restarting the triggerer.

Errors are judged by :attr:`~airflow_provider_jobmojito.exceptions.JobMojitoError.transient`
alone: a transient one is logged and the wait goes on; a permanent one (a 404, refused
credentials...) ends a sensor's wait, and makes a watch back off. A list that ends before it says
it is complete (a page empty while it said there was more, or paging stopped by the hook's bounds)
is an incomplete read: a transient error, never a partial answer taken as the whole list.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, get_args

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jobmojito.exceptions import (
    JobMojitoError,
    JobMojitoUnavailableError,
    JobMojitoUnexpectedAnswerError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.status import InterviewStatus

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping

    from airflow_provider_jobmojito.plan import Dated

_Page = TypeVar("_Page")

#: How an :class:`InterviewStateTrigger`'s wait ended.
Outcome = Literal["success", "failure", "timeout", "error"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


@dataclass(frozen=True)
class WaitOutcome:
    """How an :class:`InterviewStateTrigger`'s wait ended: the payload of its one event.

    As an event (:meth:`to_event`)::

        {"outcome": "success" | "failure" | "timeout" | "error",
         "position_id": str,
         "status": str | None,      # the position's status, as last read (None: never read)
         "message": str,            # "error" only: what went wrong, without secrets
         "transient": bool}         # "error" only: whether the same read may succeed later

    :param outcome: ``success`` (a wanted status was reached), ``failure`` (a failure status was),
        ``timeout`` (the deadline passed) or ``error`` (an API error ended the wait).
    :param position_id: the watched position.
    :param status: the position's status as last read, or ``None`` if it never was.
    :param message: for ``error``: the error's message (the provider's messages carry no secrets).
    :param transient: for ``error``: the error's :attr:`~JobMojitoError.transient`; ``None`` when
        an event of 1.0.0 did not say (see :meth:`from_event`).
    """

    outcome: Outcome
    position_id: str
    status: str | None = None
    message: str | None = None
    transient: bool | None = None

    def to_event(self) -> dict[str, Any]:
        """The event payload (JSON types only: the triggerer stores it)."""
        event: dict[str, Any] = {
            "outcome": self.outcome,
            "position_id": self.position_id,
            "status": self.status,
        }
        if self.message is not None:
            event["message"] = self.message
        if self.transient is not None:
            event["transient"] = self.transient
        return event

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> WaitOutcome:
        """Read an event of this shape, or of 1.0.0's, so a task deferred by 1.0.0 resumes after
        an upgrade.

        1.0.0 fired ``{"status": <the outcome>, "position_id", "position_status"?, "message"?}``:
        its ``status`` was the outcome and ``position_status`` the position's status.

        :param event: the payload the trigger fired.
        :raises ValueError: when ``event`` is neither shape (its message names only the keys).
        """
        if "outcome" in event:
            outcome, status = event.get("outcome"), event.get("status")
        else:  # 1.0.0
            outcome, status = event.get("status"), event.get("position_status")
        position_id = event.get("position_id")
        transient = event.get("transient")
        message = event.get("message")
        if (
            outcome not in OUTCOMES
            or not isinstance(position_id, str)
            or not isinstance(status, str | None)
            or not isinstance(message, str | None)
            or not isinstance(transient, bool | None)
        ):
            keys = ", ".join(sorted(map(str, event)))
            raise ValueError(f"Not an InterviewStateTrigger event (keys: {keys}).")
        return cls(outcome, position_id, status, message, transient)


#: A round's reading: each watched position's status (``None``: it has none), or its read's error.
_Statuses = dict[str, str | JobMojitoError | None]


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def _whole_list(hook: JobMojitoHook, status: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
    """The pages of ``merchant-interview-list``, or a transient error if the list ends before it
    says it is complete (see :func:`_complete`).

    :param hook: the connection's hook.
    :param status: the list's ``status`` filter, if any.
    :raises JobMojitoUnavailableError: the read was incomplete.
    """
    pages = hook.aiter_interview_pages() if status is None else hook.aiter_interview_pages(status=status)
    async with contextlib.aclosing(_complete(pages, lambda page: page)) as complete:
        async for page in complete:
            yield page


async def _whole_dated_list(hook: JobMojitoHook, status: str) -> AsyncGenerator[Dated, None]:
    """:func:`_whole_list`, each page with the API's ``Date`` (a :class:`Dated`)."""
    pages = hook.aiter_dated_interview_pages(status=status)
    async with contextlib.aclosing(_complete(pages, lambda dated: dated.body)) as complete:
        async for dated in complete:
            yield dated


async def _complete(pages: AsyncIterator[_Page], body: Callable[[_Page], Any]) -> AsyncGenerator[_Page, None]:
    """``pages`` as they come, then a transient error if the list ended before it said it was
    complete.

    The hook's pager stops at a page that brings no rows, and raises when the API keeps saying
    ``has_more`` past its bounds; either way, after a page that said there was more, what was read
    is not the whole list. A caller that took it as whole would miss positions (a watch would see
    them leave, then fire again as false entries), so it is an incomplete read: transient, read
    again next round. A caller may stop early itself (``aclose``) without this error.

    :param pages: the hook's pager.
    :param body: a page's JSON object.
    :raises JobMojitoUnavailableError: the read was incomplete.
    """
    more = False  # what the last page said
    try:
        async for page in pages:
            content = body(page)
            pagination = content.get("pagination") if isinstance(content, dict) else None
            more = isinstance(pagination, dict) and pagination.get("has_more") is True
            yield page
    except JobMojitoUnexpectedAnswerError as error:
        if not more:  # the first page itself was odd: the same answer will be read the same way
            raise
        raise JobMojitoUnavailableError(f"Incomplete read of the positions' list: {error}") from error
    finally:
        # Stopped early (by the caller, or an error), the hook's pager is closed now, not when it
        # is collected.
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()
    if more:
        raise JobMojitoUnavailableError(
            "Incomplete read of the positions' list: a page came back empty while the list said "
            "there was more; reading again next round."
        )


class _StatusBoard:
    """Reads the status of every watched position with one list call per interval, for all.

    ``merchant-interview-list`` answers up to 1,000 positions a page, newest-updated first. A round
    pages (:meth:`JobMojitoHook.aiter_interview_pages`) until every watched position was seen or
    the list ends; a position the list does not show (another ``type``, or hidden) is read with
    ``job-interview-get``, so it is still watched, and an error of that read is its position's
    alone (a 404 ends that position's wait, not its neighbours'). An error of the list call is
    every waiter's. The board polls only while someone waits.

    Each round starts by reading the connection again (:meth:`JobMojitoHook.arefresh_connection`:
    one read, compared by a digest; a changed connection gives the hook new credentials, a read
    that fails leaves it as it was), so the triggers of a long-lived event loop follow a rotated
    token or password from the next round; credentials refused during a round make the hook read
    it once more and retry the call with it if it has changed.

    :param hook: the shared hook of the connection.
    :param interval: seconds between rounds.
    """

    def __init__(self, hook: JobMojitoHook, interval: float) -> None:
        self.hook = hook
        self.interval = interval
        self._watchers: dict[str, int] = {}
        self._round: asyncio.Future[_Statuses | BaseException] | None = None
        self._ticker: asyncio.Task[None] | None = None
        #: API answers read, by endpoint (``list``: pages): for the benchmark and the tests.
        self.calls = {"list": 0, "get": 0}
        #: Rounds read so far (each: the list's pages, then a read per position it did not show).
        self.rounds = 0

    @staticmethod
    async def sleep(seconds: float) -> None:
        """Wait ``seconds`` between rounds (a test may replace it, to start rounds when it says).

        A replacement must give the loop a turn even when it does not wait: a round's waiters ask
        for the next round only once they have run, after this one's answer.

        :param seconds: how long.
        """
        await asyncio.sleep(seconds)

    async def next_status(self, position_id: str) -> str | None:
        """The position's status as the next round reads it.

        :raises JobMojitoError: what the round's list call, or this position's own read, raised.
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
        status = outcome.get(position_id)
        if isinstance(status, JobMojitoError):
            raise status
        return status

    async def _tick(self) -> None:
        # One round now (the first waiter's), then one per interval while anyone waits.
        await asyncio.sleep(0)  # let the triggers started together join the first round
        while self._watchers:
            round_, self._round = self._round, None  # who comes now waits for the next round
            watched = set(self._watchers)
            self.rounds += 1
            try:
                outcome: _Statuses | BaseException = await self._read(watched)
            except JobMojitoError as error:
                outcome = error
            except Exception as error:  # an odd answer (or a bug): no waiter may hang on this round
                # Permanent: the same answer would be read the same way next round.
                outcome = JobMojitoUnexpectedAnswerError(
                    f"Reading the positions' statuses failed: {type(error).__name__}."
                )
            if round_ is not None and not round_.done():
                round_.set_result(outcome)
            await self.sleep(self.interval)

    async def _read(self, watched: set[str]) -> _Statuses:
        statuses: _Statuses = {}
        await self.hook.arefresh_connection()  # once a round: a rotated credential is used now
        pages = _whole_list(self.hook)
        try:
            async for page in pages:
                self.calls["list"] += 1
                for row in page.get("data") or []:
                    position_id = row.get("id") if isinstance(row, dict) else None
                    if isinstance(position_id, str) and position_id in watched:
                        statuses[position_id] = _str_or_none(row.get("status"))
                if watched <= statuses.keys():
                    break  # everyone is seen: the later pages are not read
        finally:
            # Stopped early, the pager (an async generator) is closed now, not when it is collected.
            await pages.aclose()
        for position_id in watched - statuses.keys():
            self.calls["get"] += 1
            try:
                interview = await self.hook.aget_interview(position_id)
            except JobMojitoError as error:  # this position's alone: the others' statuses stand
                statuses[position_id] = error
            else:
                statuses[position_id] = _str_or_none(interview.get("status"))
        return statuses


class SharedPolls:
    """What the triggers of one event loop share: a hook per connection, a board per interval.

    Lifecycle:

    * State is kept per running event loop, held weakly by the loop: a triggerer (one loop for all
      its triggers) has one set, each ``asyncio.run`` of a test its own, and a loop that is closed
      and collected takes its hooks and boards with it. Every method must be called in a loop.
    * :meth:`hook` builds the hook of a (connection, hook params) on first use; it then lives as
      long as the loop, so its async client (one pool of connections) serves every trigger of
      that connection, whenever it starts. Hooks of one account, whatever their params, sign in
      once between them (the process's token cache and sign-in locks). A hook reads its
      connection again once per round of each of its boards, and when the API refuses its
      credentials: a rotated token or password is used without restarting the triggerer.
    * :meth:`board` builds the :class:`_StatusBoard` of a (connection, hook params, interval) on
      first use, over that hook. A board polls only while a trigger waits on it: its ticker ends
      after the round in which the last waiter left, and the next waiter starts it again; an idle
      board costs no calls.
    * :meth:`aclose` forgets the running loop's hooks and boards and closes the hooks' connections,
      for a clean shutdown or a test, once no trigger of the loop waits.

    The triggers use the one instance :data:`SHARED_POLLS` (through their ``shared`` attribute).
    """

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShare] = (
            weakref.WeakKeyDictionary()
        )

    def _share(self) -> _LoopShare:
        return self._loops.setdefault(asyncio.get_running_loop(), _LoopShare())

    def hook(self, conn_id: str, hook_params: Mapping[str, Any]) -> JobMojitoHook:
        """The running loop's hook of ``conn_id`` with ``hook_params``, built on first use.

        :param conn_id: the Airflow connection.
        :param hook_params: keyword arguments for the hook.
        """
        hooks = self._share().hooks
        key = (conn_id, _params_key(hook_params))
        hook = hooks.get(key)
        if hook is None:
            hook = hooks[key] = JobMojitoHook(conn_id, **hook_params)
        return hook

    def board(self, conn_id: str, hook_params: Mapping[str, Any], interval: float) -> _StatusBoard:
        """The running loop's status board of ``conn_id`` with ``hook_params`` polling every
        ``interval`` seconds, built on first use over :meth:`hook`.

        :param conn_id: the Airflow connection.
        :param hook_params: keyword arguments for the hook.
        :param interval: seconds between the board's rounds.
        """
        boards = self._share().boards
        key = (conn_id, _params_key(hook_params), float(interval))
        board = boards.get(key)
        if board is None:
            board = boards[key] = _StatusBoard(self.hook(conn_id, hook_params), float(interval))
        return board

    def boards(self) -> list[_StatusBoard]:
        """The running loop's boards, oldest first (their ``calls`` count the API calls made)."""
        return list(self._share().boards.values())

    async def aclose(self) -> None:
        """Forget the running loop's hooks and boards, and close the hooks' connections."""
        share = self._loops.pop(asyncio.get_running_loop(), None)
        if share is not None:
            for hook in share.hooks.values():
                await hook.aclose()


class _LoopShare:
    """What one event loop's triggers share (see :class:`SharedPolls`)."""

    def __init__(self) -> None:
        self.hooks: dict[tuple[str, tuple[tuple[str, Any], ...]], JobMojitoHook] = {}
        self.boards: dict[tuple[str, tuple[tuple[str, Any], ...], float], _StatusBoard] = {}


def _params_key(hook_params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    # The hook's parameters are scalars (timeout, max_retries...): hashable as they are.
    return tuple(sorted(hook_params.items()))


#: The one :class:`SharedPolls` of the provider's triggers.
SHARED_POLLS = SharedPolls()


class InterviewStateTrigger(BaseTrigger):
    """Wait until a position's status is one of ``status`` (or one of ``failure_status``).

    Fires once, a :class:`WaitOutcome`: ``{"outcome", "position_id", "status"}`` with outcome
    ``success`` (a wanted status was reached), ``failure`` (a failure status was), ``timeout``
    (``deadline`` passed, even while a round is still reading) or ``error`` (a permanent API error
    such as a 404, with its ``message`` and ``"transient": false``). Transient API errors are
    logged and the wait goes on. The triggers of one connection and interval share one list call
    per interval (:data:`SHARED_POLLS`). It logs when it starts and when the status or the error
    it reads changes, not every interval.

    :param position_id: the position to watch (a canonical UUID).
    :param status: the statuses to wait for, one or a list.
    :param failure_status: statuses that end the wait as a failure, one or a list.
    :param jobmojito_conn_id: the Airflow connection.
    :param poll_interval: seconds between reads.
    :param deadline: POSIX time at which to give up, or ``None``.
    :param hook_params: keyword arguments for the hook.
    """

    #: What the triggers share; a class attribute, so a test may give the triggers another.
    shared: ClassVar[SharedPolls] = SHARED_POLLS

    @staticmethod
    def clock() -> float:
        """Now, in POSIX seconds: what ``deadline`` is compared with (a test may replace it)."""
        return time.time()

    def __init__(
        self,
        *,
        position_id: str,
        status: str | Iterable[str],
        failure_status: str | Iterable[str] = (),
        jobmojito_conn_id: str = "jobmojito_default",
        poll_interval: float = 60.0,
        deadline: float | None = None,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.position_id = position_id
        # One string is one status, not a list of letters.
        self.status = InterviewStatus.parse_many(status, param="status")
        failure = [failure_status] if isinstance(failure_status, str) else list(failure_status)
        self.failure_status = InterviewStatus.parse_many(failure, param="failure_status") if failure else []
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
        board = self.shared.board(self.jobmojito_conn_id, self.hook_params, self.poll_interval)
        status: str | None = None  # as last read
        logged: object = None  # what the last line said (a status or an error's message)
        self.log.info("Position %s: waiting for %s.", self.position_id, ", ".join(self.status))
        while True:
            remaining = None if self.deadline is None else self.deadline - self.clock()
            if remaining is not None and remaining <= 0:
                yield self._fire(WaitOutcome("timeout", self.position_id, status))
                return
            try:
                # Bounded by the deadline: a round that reads for long (many pages, a slow API)
                # must not keep the wait past it; the round goes on for the board's other waiters.
                status = await asyncio.wait_for(board.next_status(self.position_id), remaining)
            except TimeoutError:
                yield self._fire(WaitOutcome("timeout", self.position_id, status))
                return
            except JobMojitoError as error:
                if error.transient:
                    if str(error) != logged:  # a line per new trouble, not per interval
                        logged = str(error)
                        self.log.warning("Position %s: %s; still waiting.", self.position_id, error)
                    continue
                yield self._fire(
                    WaitOutcome("error", self.position_id, status, message=str(error), transient=False)
                )
                return
            if status in self.status:
                yield self._fire(WaitOutcome("success", self.position_id, status))
                return
            if status in self.failure_status:
                yield self._fire(WaitOutcome("failure", self.position_id, status))
                return
            if status != logged:  # a line per change: 300 waiting sensors, not 300 lines an interval
                logged = status
                self.log.info(
                    "Position %s is %s; waiting for %s.", self.position_id, status, ", ".join(self.status)
                )

    @staticmethod
    def _fire(outcome: WaitOutcome) -> TriggerEvent:
        return TriggerEvent(outcome.to_event())  # type: ignore[no-untyped-call]


def _moment(updated_at: str | None) -> float | None:
    """An ``updated_at`` (ISO 8601) in POSIX seconds; ``None`` when it is not one."""
    if updated_at is None:
        return None
    try:
        moment = datetime.fromisoformat(updated_at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _at(updated_at: str | None) -> float:
    """:func:`_moment`, ``-inf`` (older than anything) when unreadable: for ordering."""
    moment = _moment(updated_at)
    return -math.inf if moment is None else moment


def _row_moment(row: Mapping[str, Any]) -> float:
    """A row's ``updated_at`` in POSIX seconds; ``-inf`` when unreadable."""
    return _at(_str_or_none(row.get("updated_at")))


def _iso(seconds: float) -> str:
    """POSIX seconds as ISO 8601 UTC, for log lines and the stored watermark."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Horizon:
    """Where a watch's knowledge starts, in the API's time.

    A position the watch has not listed before fires when its ``updated_at`` is at or after
    ``after`` and is not the one ``seen`` holds for it (a change the watch, or the watch before a
    restart, already accounted for).

    :param after: POSIX seconds by the API's clock.
    :param seen: position id -> ``updated_at`` already accounted for, all at or after ``after``.
    """

    after: float
    seen: Mapping[str, str]

    #: The stored form's version: a watermark of another shape is not read (a new watch starts).
    VERSION: ClassVar[int] = 1

    def admits(self, position_id: str, updated_at: str | None, first_poll: bool) -> bool:
        """Whether a position new to the watch entered after this horizon.

        :param first_poll: whether this is the watch's first successful poll: a row without a
            readable ``updated_at`` is then the baseline, later an entry (judged by presence alone).
        """
        moment = _moment(updated_at)
        if moment is None:
            return not first_poll
        return moment >= self.after and self.seen.get(position_id) != updated_at

    def to_json(self) -> dict[str, Any]:
        return {"version": self.VERSION, "after": _iso(self.after), "seen": dict(self.seen)}

    @classmethod
    def from_json(cls, value: object) -> _Horizon | None:
        """A stored watermark, or ``None`` when ``value`` is not one this version wrote."""
        if not isinstance(value, dict) or value.get("version") != cls.VERSION:
            return None
        after, seen = _moment(_str_or_none(value.get("after"))), value.get("seen")
        if after is None or not isinstance(seen, dict):
            return None
        return cls(after, {str(k): v for k, v in seen.items() if isinstance(v, str)})


@dataclass(slots=True)  # one per position remembered: thousands
class _Sighting:
    """What a watch last saw of a position in a watched status.

    :param status: its status then.
    :param updated_at: its ``updated_at`` then, as the API wrote it.
    :param moment: that ``updated_at`` in POSIX seconds (read once), ``None`` if unreadable.
    :param poll: the watch's successful poll that last listed it (they are counted from 1).
    """

    status: str
    updated_at: str | None
    moment: float | None
    poll: int


class _Memory:
    """What a watch remembers of the positions it listed, and the rule that tells entries apart.

    A position listed now fires when

    * it is new to the memory, and the :class:`_Horizon` admits it (it changed after the watch
      started, or after the watermark of the watch before a restart);
    * or its status is another watched one than remembered (it moved from one to the other);
    * or the last poll did not list it and its ``updated_at`` is not the one remembered: it left
      and came back. A row that a shift hid from the last poll comes back unchanged: no event.

    A position the last poll listed too, in the same status, does not fire (an edit, or a round
    trip between two polls, which no poll saw). Positions are remembered while listed, and the
    ``cap`` longest-listed of the absent ones besides; older ones are forgotten.

    :param horizon: where the watch's knowledge starts.
    :param cap: absent positions remembered at most.
    """

    def __init__(self, horizon: _Horizon, cap: int) -> None:
        self.horizon = horizon
        self.cap = cap
        self.polls = 0
        # Ordered by last sighting, oldest first: the front holds the longest-absent.
        self._seen: dict[str, _Sighting] = {}

    def entries(self, rows: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Take a poll's rows (id -> row in a watched status); return those that entered."""
        self.polls += 1
        entered = []
        for position_id, row in rows.items():
            status, updated_at = row["status"], _str_or_none(row.get("updated_at"))
            before = self._seen.pop(position_id, None)
            if before is None:
                new = self.horizon.admits(position_id, updated_at, first_poll=self.polls == 1)
            elif before.status != status:
                new = True
            elif before.poll == self.polls - 1:
                new = False
            else:
                new = before.updated_at != updated_at
            if new:
                entered.append(row)
            if before is not None and before.updated_at == updated_at:
                before.status, before.poll = status, self.polls
                self._seen[position_id] = before
            else:
                self._seen[position_id] = _Sighting(status, updated_at, _moment(updated_at), self.polls)
        for _ in range(len(self._seen) - len(rows) - self.cap):
            del self._seen[next(iter(self._seen))]
        return entered

    def accounted_by(self, horizon: _Horizon) -> bool:
        """Whether ``horizon`` admits none of the positions remembered: a watch restarted from it
        would fire nothing this one has not fired."""
        return not any(
            sighting.moment is not None
            and sighting.moment >= horizon.after
            and horizon.seen.get(position_id) != sighting.updated_at
            for position_id, sighting in self._seen.items()
        )

    def watermark(self, date: float, margin: float, cap: int) -> _Horizon:
        """The horizon a restarted watch starts from: ``margin`` seconds before ``date`` (the API's
        time when the last poll began), and what was listed since, at most ``cap`` positions."""
        after = max(self.horizon.after, date - margin)
        seen = {pid: u for pid, u in self.horizon.seen.items() if _at(u) >= after}
        for position_id, sighting in self._seen.items():
            if sighting.updated_at is not None and sighting.moment is not None and sighting.moment >= after:
                seen[position_id] = sighting.updated_at
        if len(seen) > cap:
            # The newest kept; the horizon moves past the others, so they count as accounted for.
            ordered = sorted(seen.items(), key=lambda item: _at(item[1]), reverse=True)
            after = max(after, _at(ordered[cap][1]) + 1e-6)
            seen = {pid: u for pid, u in ordered[:cap] if _at(u) >= after}
        return _Horizon(after, seen)


class _Watermarks:
    """A watch's watermark in the state store Airflow 3.3 gives a watcher trigger, if it has one.

    Failures of the store never end the watch: each kind (reading, writing) is logged once, until
    it succeeds again, and the watch goes on as if there were no store.

    :param store: the trigger's ``asset_state_store`` (``aget``/``aset``), or ``None``.
    :param key: the watch's key in it.
    :param log: the trigger's logger.
    :param watched: the watched statuses, for log lines.
    """

    def __init__(self, store: Any, key: str, log: Any, watched: str) -> None:
        self._store = store
        self._key = key
        self._log = log
        self._watched = watched
        self._saved: _Horizon | None = None
        self._pending: _Horizon | None = None  # a firing poll's, stored at the next poll
        self._failing: set[str] = set()

    async def load(self) -> _Horizon | None:
        """The stored watermark; ``None`` when there is no store, none stored, or it fails."""
        if self._store is None:
            return None
        try:
            value = await self._store.aget(self._key)
        except ValueError:
            # Identical watches of several assets share one trigger, and Airflow then gives it one
            # accessor per asset but no single one to use without knowing the assets.
            self._store = None
            self._log.warning(
                "Watching %s: this watch serves several assets, and Airflow gives such a watch no "
                "single state store: a restarted triggerer starts a new watch. A watch of its own "
                "per asset (e.g. another poll_interval) keeps its watermark.",
                self._watched,
            )
            return None
        except Exception as error:
            self._trouble("read", error)
            return None
        self._failing.discard("read")
        if value is None:
            return None
        horizon = _Horizon.from_json(value)
        if horizon is None:
            self._log.warning(
                "Watching %s: the state store holds no watermark this version reads; starting anew.",
                self._watched,
            )
        return horizon

    async def save(self, memory: _Memory, date: float, margin: float, cap: int, *, fired: bool) -> None:
        """Store the watermark of the poll that began at ``date``, unless the last one still
        accounts for every position remembered (an idle watch writes nothing).

        A poll that fired events has its watermark stored at the next poll, not now: the triggerer
        sends the events it was given at its next sync, about a second later, while the store
        writes at once; a watermark covering events still unsent would lose them if the triggerer
        died in between. The next poll comes a poll interval later, and stores it (or a newer one);
        a triggerer that dies before then fires those events again after its restart: at least
        once, never lost.

        :param fired: whether this poll fired events.
        """
        if self._store is None:
            return
        latest = self._pending or self._saved
        fresh = None
        if latest is None or not memory.accounted_by(latest):
            fresh = memory.watermark(date, margin, cap)
        if fired:
            due, self._pending = self._pending, fresh
        else:
            due, self._pending = fresh or self._pending, None
        if due is None:
            return
        try:
            await self._store.aset(self._key, due.to_json())
        except Exception as error:
            self._trouble("write", error)
            return
        self._failing.discard("write")
        self._saved = due

    def _trouble(self, what: str, error: Exception) -> None:
        if what not in self._failing:
            self._failing.add(what)
            self._log.warning(
                "Watching %s: could not %s its watermark in the asset's state store (%s); the watch "
                "goes on, and a triggerer restarted meanwhile would start a new watch.",
                self._watched,
                what,
                type(error).__name__,
            )


@dataclass(frozen=True)
class _Listing:
    """One poll of a change watch.

    :param rows: id -> row, for the rows in a watched status.
    :param date: the API's time when the poll began (its first answer's ``Date``), or ``None``.
    :param received: the watch's monotonic clock when that answer arrived.
    """

    rows: dict[str, dict[str, Any]]
    date: float | None
    received: float


try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2: no event-driven scheduling
    BaseEventTrigger = None  # type: ignore[assignment,misc]


if BaseEventTrigger is not None:

    class InterviewStateChangeTrigger(BaseEventTrigger):
        """Fire once for each position that enters a watched status, for an ``AssetWatcher``.

        Fires on changes, never on states. Each poll lists the positions in the watched statuses
        (``merchant-interview-list``, newest-updated first, paged by 1,000); only rows whose status
        is a watched one count, whatever the API sends. Everything is judged in the API's time (its
        rows' ``updated_at`` and its answers' ``Date`` header), never by this machine's clock:

        * **The watch's start.** Positions already in a watched status when the watch starts do
          not fire; those that enter after it do, even while the API fails: the start is the first
          answer's ``Date`` minus the time this worker's monotonic clock measured from the start
          to that answer, and rows of the first successful poll updated at or after it fire.
          ``Date`` has a resolution of one second and is rounded down, so this start may be up to
          a second (and the answer's travel time) early: a position that entered in the second
          before the watch started may fire; none that entered after it is missed.
        * **Entries.** A position fires when it is listed and was not in that status at the last
          poll: it is new to the watch (and changed after the start), it moved from one watched
          status to another, or it left and came back (as seen by two polls; a round trip between
          two polls is not seen). A position listed by the last poll too is only edited: no event.
        * **Shifted pages.** The list pages by offset: a position that leaves the status between
          two page reads moves the rows after it up one place, and the next page starts a row too
          far; a position that changes meanwhile moves to the top, already read. So the watch
          remembers, for each position it saw in a watched status, its status and ``updated_at``
          (every listed position, and the :attr:`MEMORY_CAP` most recently listed of the others):
          a row a shift hid comes back unchanged and does not fire, and a real entry a shift hid
          fires at the next poll at the latest, once. A list of more than one page is also read
          at its first page again once the pages are read (one more call per poll): what changed
          meanwhile is there, so an edit that moved a position out of the pages' reach is no
          entry. More than a page of changes while the pages were read is an incomplete read,
          read again next poll.
        * **Restarts.** On Airflow 3.3 the triggerer gives a watcher trigger its asset's state
          store: the watch keeps a watermark there (the API's time when its last poll began, less
          :attr:`WATERMARK_MARGIN` seconds, and the positions it listed since, at most
          :attr:`WATERMARK_CAP`), written after a poll that saw something new; after a poll that
          fired, at the next poll (the triggerer sends events at its next sync, the store writes
          at once: a watermark covering an unsent event would lose it). A restarted triggerer
          resumes from it: what entered while it was down fires, once, and nothing older
          ("neither floods nor loses"), except a position that was only edited while it was down
          (the watermark does not hold every listed position, and the list cannot tell an edit
          from an entry), which fires, and the entries of the last poll before it died, which
          fire again (at least once, never lost). The key names the connection, the statuses and a
          digest of the trigger's arguments: two watches of one asset never share a watermark,
          and a watch whose arguments change starts anew. Without a store (Airflow 3.0 to 3.2, a
          trigger Airflow gave none, or a watch that serves several assets: identical watches of
          several assets share one trigger, which gets no single store) a restarted triggerer
          starts a new watch, as before: the changes made while it was down do not fire. A store
          that fails is logged once and the watch goes on without it.
        * **Errors.** Transient API errors are logged and the watch goes on. Permanent ones (auth,
          configuration) do not end it either (a triggerer would only restart it): they are
          logged once and the watch backs off, doubling its wait up to
          :attr:`MAX_BACKOFF_INTERVALS` poll intervals, until a poll succeeds. Its start and its
          memory are kept throughout. An API that sends no ``Date`` (a proxy that drops it) makes
          the first successful poll the baseline, and keeps no watermark.

        Event payload: ``{"position_id", "status", "updated_at"}``, ``status`` being the
        position's status (one of the watched ones); the events of one poll come oldest first.

        :param status: the statuses to watch, one or a list.
        :param jobmojito_conn_id: the Airflow connection.
        :param poll_interval: seconds between polls.
        :param hook_params: keyword arguments for the hook.
        """

        #: What the triggers share; a class attribute, so a test may give the triggers another.
        shared: ClassVar[SharedPolls] = SHARED_POLLS
        #: The longest wait after permanent errors, in poll intervals.
        MAX_BACKOFF_INTERVALS: ClassVar[int] = 8
        #: Positions remembered besides those the last poll listed (the longest-absent forgotten
        #: first): about 330 bytes each (3.3 MB at the cap, measured on Python 3.11).
        MEMORY_CAP: ClassVar[int] = 10_000
        #: Positions the stored watermark holds at most (about 70 bytes each, well under Airflow's
        #: default limit of 64 KiB per value).
        WATERMARK_CAP: ClassVar[int] = 500
        #: Seconds before a poll's start that its watermark begins: a change stamped just before
        #: the poll but not yet visible to it still fires after a restart.
        WATERMARK_MARGIN: ClassVar[float] = 5.0

        @staticmethod
        async def sleep(seconds: float) -> None:
            """Wait ``seconds`` between polls (a test may replace it to see the waits).

            :param seconds: how long.
            """
            await asyncio.sleep(seconds)

        @staticmethod
        def monotonic() -> float:
            """The clock the watch measures elapsed time with (never a date: those are the
            API's); a test may replace it."""
            return time.monotonic()

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

        def watermark_key(self) -> str:
            """This watch's key in its asset's state store: the connection, the statuses, and a
            digest of all the trigger's arguments (two watches of one asset never share one)."""
            arguments = json.dumps(self.serialize()[1], sort_keys=True, default=str)
            digest = hashlib.sha256(arguments.encode()).hexdigest()[:16]
            return f"jobmojito.watch.{self.jobmojito_conn_id}.{'+'.join(self.status)}.{digest}"

        async def run(self) -> AsyncIterator[TriggerEvent]:
            started = self.monotonic()
            hook = self.shared.hook(self.jobmojito_conn_id, self.hook_params)
            watched = ", ".join(self.status)
            # Injected by Airflow 3.3's triggerer before run(); absent before 3.3.
            store = _Watermarks(
                getattr(self, "asset_state_store", None), self.watermark_key(), self.log, watched
            )
            memory: _Memory | None = None
            wait = self.poll_interval
            trouble: str | None = None  # the error last logged, until a poll succeeds
            while True:
                try:
                    listing = await self._poll(hook)
                except JobMojitoError as error:
                    # Logged when it is new, without a traceback: the same error every poll would
                    # flood the triggerer's log.
                    if str(error) != trouble:
                        trouble = str(error)
                        if error.transient:
                            self.log.warning("Watching %s: %s; trying again.", watched, error)
                        else:
                            self.log.error(
                                "Watching %s: %s; the watch goes on, polling less often until a "
                                "poll succeeds.",
                                watched,
                                error,
                            )
                    if not error.transient:
                        # Backing off: a permanent error asks for someone to act, not for polls.
                        wait = min(wait * 2, self.poll_interval * self.MAX_BACKOFF_INTERVALS)
                else:
                    if trouble is not None:
                        self.log.info("Watching %s: reading again.", watched)
                    trouble, wait = None, self.poll_interval
                    if memory is None:
                        memory = _Memory(await self._horizon(store, listing, started), self.MEMORY_CAP)
                    entered = memory.entries(listing.rows)
                    for row in sorted(entered, key=lambda row: str(row.get("updated_at"))):
                        yield TriggerEvent(  # type: ignore[no-untyped-call]
                            {
                                "position_id": row["id"],
                                "status": row["status"],
                                "updated_at": row.get("updated_at"),
                            }
                        )
                    if listing.date is not None:
                        await store.save(
                            memory,
                            listing.date,
                            self.WATERMARK_MARGIN,
                            self.WATERMARK_CAP,
                            fired=bool(entered),
                        )
                await self.sleep(wait)

        async def _horizon(self, store: _Watermarks, listing: _Listing, started: float) -> _Horizon:
            """Where the watch starts, at its first successful poll: the stored watermark, or the
            API's time when the watch started."""
            watched = ", ".join(self.status)
            stored = await store.load()
            if stored is not None:
                self.log.info(
                    "Watching %s again: %d position(s) there now; what changed after %s (the watermark "
                    "the watch stored before the triggerer restarted) fires.",
                    watched,
                    len(listing.rows),
                    _iso(stored.after),
                )
                return stored
            if listing.date is None:
                # No Date: the API's time is unknown, and this poll is the baseline.
                newest = max((_row_moment(row) for row in listing.rows.values()), default=-math.inf)
                seen = {
                    pid: str(row["updated_at"])
                    for pid, row in listing.rows.items()
                    if newest > -math.inf and _row_moment(row) == newest
                }
                horizon = _Horizon(newest, seen)
            else:
                horizon = _Horizon(listing.date - (listing.received - started), {})
            self.log.info(
                "Watching %d position(s) now in %s for changes%s.",
                len(listing.rows),
                watched,
                f" after {_iso(horizon.after)}, the API's time when the watch started"
                if listing.date is not None
                else " (the API sends no Date: this poll is the baseline, and no watermark is kept)",
            )
            return horizon

        async def _poll(self, hook: JobMojitoHook) -> _Listing:
            # Once a poll, as the status board does once a round: a rotated token or password is
            # used from this poll on, not only after the API refused the old one.
            await hook.arefresh_connection()
            rows: dict[str, dict[str, Any]] = {}
            date: float | None = None
            received: float | None = None
            for status in self.status:
                pages, since = 0, None
                async with contextlib.aclosing(_whole_dated_list(hook, status)) as listing:
                    async for dated in listing:
                        if received is None:
                            date, received = dated.date, self.monotonic()
                        if pages == 0:
                            since = dated.date
                        pages += 1
                        self._take(rows, dated.body)
                if pages > 1:
                    await self._read_top_again(hook, status, rows, since)
            assert received is not None  # a listing reads one page at least, or raises
            return _Listing(rows, date, received)

        async def _read_top_again(
            self, hook: JobMojitoHook, status: str, rows: dict[str, dict[str, Any]], since: float | None
        ) -> None:
            """Read the first page again, after the others: the list is newest-updated first, so the
            positions that changed while the pages were read are there, out of reach of the pages'
            offsets. It must reach back to the listing's first answer (``since``), or more than a
            page changed meanwhile: an incomplete read."""
            pages = hook.aiter_dated_interview_pages(status=status)
            try:
                dated = await anext(pages, None)
            finally:
                close = getattr(pages, "aclose", None)  # the later pages are not read
                if close is not None:
                    await close()
            if dated is None:
                return
            self._take(rows, dated.body)
            data, pagination = dated.body.get("data"), dated.body.get("pagination")
            more = isinstance(pagination, dict) and pagination.get("has_more") is True
            rows_read = [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []
            oldest = min((_row_moment(row) for row in rows_read), default=math.inf)
            if more and since is not None and oldest >= since:
                raise JobMojitoUnavailableError(
                    f"Incomplete read of the positions in {status}: more than a page of them changed "
                    "while the list was read; reading again next poll."
                )

        def _take(self, rows: dict[str, dict[str, Any]], page: object) -> None:
            """Add a page's rows in a watched status to ``rows``; of two reads of one position, the
            newer ``updated_at`` wins."""
            data = page.get("data") if isinstance(page, dict) else None
            for row in data if isinstance(data, list) else []:
                # Only rows in a watched status: an API that ignores its filter must not make an
                # active position look like a completed one.
                if not (
                    isinstance(row, dict)
                    and isinstance(row.get("id"), str)
                    and row.get("status") in self.status
                ):
                    continue
                known = rows.get(row["id"])
                if known is None or _row_moment(row) >= _row_moment(known):
                    rows[row["id"]] = row


def __getattr__(name: str) -> Any:
    if name == "InterviewStateChangeTrigger":
        raise ImportError(
            "InterviewStateChangeTrigger needs Airflow 3.0 or later (BaseEventTrigger and AssetWatcher "
            "start DAG runs from events); this is Airflow 2. Use InterviewStateSensor in a scheduled "
            "DAG instead."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
