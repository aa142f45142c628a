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
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jobmojito.exceptions import (
    JobMojitoError,
    JobMojitoUnavailableError,
    JobMojitoUnexpectedAnswerError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.status import InterviewStatus

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping

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
    says it is complete.

    The hook's pager stops at a page that brings no rows, and raises when the API keeps saying
    ``has_more`` past its bounds; either way, after a page that said there was more, what was read
    is not the whole list. A caller that took it as whole would miss positions (a watch would see
    them leave, then fire again as false entries), so it is an incomplete read: transient, read
    again next round. A caller may stop early itself (``aclose``) without this error.

    :param hook: the connection's hook.
    :param status: the list's ``status`` filter, if any.
    :raises JobMojitoUnavailableError: the read was incomplete.
    """
    more = False  # what the last page said
    pages = hook.aiter_interview_pages() if status is None else hook.aiter_interview_pages(status=status)
    try:
        async for page in pages:
            pagination = page.get("pagination") if isinstance(page, dict) else None
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
        the positions in the watched statuses (``merchant-interview-list``, paged by 1,000); only
        rows whose status is a watched one count, whatever the API sends. A restarted triggerer
        starts a new watch: it does not replay old changes. Transient API errors are logged and
        the watch goes on. Permanent ones (auth, configuration) do not end it either (a triggerer
        would only restart it, and lose its baseline): they are logged once and the watch backs
        off, doubling its wait up to :attr:`MAX_BACKOFF_INTERVALS` poll intervals, until a poll
        succeeds; its baseline is kept throughout.

        Event payload: ``{"position_id", "status", "updated_at"}``, ``status`` being the
        position's status (one of the watched ones).

        :param status: the statuses to watch, one or a list.
        :param jobmojito_conn_id: the Airflow connection.
        :param poll_interval: seconds between polls.
        :param hook_params: keyword arguments for the hook.
        """

        #: What the triggers share; a class attribute, so a test may give the triggers another.
        shared: ClassVar[SharedPolls] = SHARED_POLLS
        #: The longest wait after permanent errors, in poll intervals.
        MAX_BACKOFF_INTERVALS: ClassVar[int] = 8

        @staticmethod
        async def sleep(seconds: float) -> None:
            """Wait ``seconds`` between polls (a test may replace it to see the waits).

            :param seconds: how long.
            """
            await asyncio.sleep(seconds)

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
            hook = self.shared.hook(self.jobmojito_conn_id, self.hook_params)
            known: dict[str, str] | None = None
            watched = ", ".join(self.status)
            wait = self.poll_interval
            trouble: str | None = None  # the error last logged, until a poll succeeds
            while True:
                try:
                    current = await self._positions_in_watched_statuses(hook)
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
                await self.sleep(wait)

        async def _positions_in_watched_statuses(self, hook: JobMojitoHook) -> dict[str, dict[str, Any]]:
            rows: dict[str, dict[str, Any]] = {}
            for status in self.status:
                async for page in _whole_list(hook, status=status):
                    for row in page.get("data") or []:
                        # Only rows in a watched status: an API that ignores its filter must not
                        # make an active position look like a completed one.
                        if (
                            isinstance(row, dict)
                            and isinstance(row.get("id"), str)
                            and row.get("status") in self.status
                        ):
                            rows[row["id"]] = row
            return rows


def __getattr__(name: str) -> Any:
    if name == "InterviewStateChangeTrigger":
        raise ImportError(
            "InterviewStateChangeTrigger needs Airflow 3.0 or later (BaseEventTrigger and AssetWatcher "
            "start DAG runs from events); this is Airflow 2. Use InterviewStateSensor in a scheduled "
            "DAG instead."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
