"""A watcher trigger that fires when interview results are new or updated (Airflow 3.0 and later).

:class:`InterviewResultChangeTrigger` polls ``merchant-result-list`` (newest-updated first, through
:meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.aiter_results`, so each result
once per poll, with the pager's bounds) and fires one event per poll that found results new or
updated since the last, carrying their ids, for an ``AssetWatcher`` that starts a scoring or
notification DAG. It shares with the position watcher
(:class:`~airflow_provider_jobmojito.triggers.jobmojito.InterviewStateChangeTrigger`) the hook of
a connection in the triggerer (:data:`~airflow_provider_jobmojito.triggers.jobmojito.SHARED_POLLS`:
one pool, one sign-in) and the rules for the watch's start, restarts and errors, written here for
results.

On Airflow 3.3 every watch of one connection with the same filters and interval shares one poll
(``shared_stream_key``): one list call per interval, however many assets watch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import TriggerEvent

from airflow_provider_jobmojito.exceptions import JobMojitoError
from airflow_provider_jobmojito.results import check_result_filters, updated_at_of
from airflow_provider_jobmojito.triggers.jobmojito import SHARED_POLLS, SharedPolls

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable, Mapping

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

log = logging.getLogger(__name__)

#: Seconds before the newest ``updated_at`` a poll saw that the next poll starts reading: a result
#: stamped just before it but not yet visible still fires, once (the results seen in that margin
#: are remembered and do not fire again).
MARGIN = timedelta(seconds=5)
#: Results remembered at most from the margin (a burst of updates within five seconds beyond it
#: moves the start past the oldest of them: they count as seen).
SEEN_CAP = 10_000


@dataclass
class _Horizon:
    """Where a watch's knowledge of results starts: results updated at or after ``after`` fire,
    unless ``seen`` holds them with this ``updated_at`` (already fired)."""

    after: datetime
    seen: dict[str, str] = field(default_factory=dict)

    VERSION: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        return {"version": self.VERSION, "after": self.after.isoformat(), "seen": dict(self.seen)}

    @classmethod
    def from_json(cls, value: object) -> _Horizon | None:
        if not isinstance(value, dict) or value.get("version") != cls.VERSION:
            return None
        after, seen = value.get("after"), value.get("seen")
        if not isinstance(after, str) or not isinstance(seen, dict):
            return None
        try:
            moment = datetime.fromisoformat(after)
        except ValueError:
            return None
        return cls(moment, {str(k): v for k, v in seen.items() if isinstance(v, str)})

    def take(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows new to the watch, and the horizon moved past them (``MARGIN`` before the newest)."""
        fresh = [row for row in rows if self.seen.get(str(row.get("id"))) != row.get("updated_at")]
        moments = [m for m in map(updated_at_of, rows) if m is not None]
        if moments:
            self.after = max(self.after, max(moments) - MARGIN)
        for row in rows:
            self.seen[str(row.get("id"))] = str(row.get("updated_at"))
        self.seen = {
            rid: stamp
            for rid, stamp in self.seen.items()
            if (moment := _moment(stamp)) is not None and moment >= self.after
        }
        if len(self.seen) > SEEN_CAP:
            newest = sorted(self.seen.items(), key=lambda item: item[1], reverse=True)[:SEEN_CAP]
            self.seen = dict(newest)
            self.after = max(self.after, min(m for m in map(_moment, self.seen.values()) if m is not None))
        return fresh


def _moment(stamp: str) -> datetime | None:
    return updated_at_of({"updated_at": stamp})


async def _baseline(hook: JobMojitoHook, filters: Mapping[str, Any], include_test: bool) -> _Horizon:
    """The watch's start: the newest result now (it and older ones do not fire)."""
    types, checked = check_result_filters(filters)
    newest: datetime | None = None
    seen: dict[str, str] = {}
    for type_ in types:
        page = await hook.alist_results(
            type=type_, order_by="updated_at_newest", limit=1, offset=0, **checked
        )
        data = page.get("data")
        for row in data if isinstance(data, list) else []:
            moment = updated_at_of(row) if isinstance(row, dict) else None
            if moment is not None and (newest is None or moment >= newest):
                newest = moment
                seen[str(row.get("id"))] = str(row.get("updated_at"))
    # An empty list: every result that appears is new. Not this machine's clock, which the API's
    # stamps may trail (those results would never fire).
    start = newest or datetime(1970, 1, 1, tzinfo=UTC)
    return _Horizon(start, {rid: stamp for rid, stamp in seen.items() if _moment(stamp) == newest})


try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2: no event-driven scheduling
    BaseEventTrigger = None  # type: ignore[assignment,misc]


if BaseEventTrigger is not None:

    class InterviewResultChangeTrigger(BaseEventTrigger):
        """Fire when interview results are new or updated: one event per poll that found any.

        * **The watch's start.** Results that exist when the watch starts do not fire: the first
          poll reads the newest result (one list call) and the watch starts from its
          ``updated_at``; results updated after it fire. Judged by the API's timestamps, never this
          machine's clock.
        * **Polls.** Each poll reads the results updated since the last poll's newest, less
          :data:`MARGIN` (a result stamped just before but not yet visible still fires), and fires
          those not already fired with the same ``updated_at``: a result updated again fires again.
        * **Sharing.** On Airflow 3.3 every watch of one connection with the same filters,
          ``include_test``, interval and hook parameters shares one poll (``shared_stream_key``).
          Before 3.3 each watch polls on its own (over the connection's one hook).
        * **Restarts.** On Airflow 3.3 each watch keeps a watermark in its asset's state store (the
          start of the last poll that fired, and the results fired since), written when the next
          poll arrives: by then the triggerer has sent the events (it sends them at its next sync;
          the store writes at once). A restarted triggerer first reads the results updated between
          the watermark and the new shared poll's start, and fires those not fired (at least once,
          never lost); a watch that joins a shared poll already running (the watches of one key
          re-subscribe one by one) reads from its watermark up to now instead, as it missed what
          the poll fired before it joined. Without a store the watch starts anew.
        * **Errors.** Transient API errors are logged and the poll goes on at the next interval;
          permanent ones are logged once and the poll backs off (doubling, up to
          :attr:`MAX_BACKOFF_INTERVALS` intervals) until a poll succeeds.

        Event payload: ``{"ids": [...], "interview_result_ids": [...], "count": n,
        "updated_at_newest": iso}``: the rows' ``id`` (and ``interview_result_id``, which the
        details endpoint and the webhooks use), newest first. A DAG started by it can export them
        with :class:`~airflow_provider_jobmojito.operators.results.InterviewResultsToStorageOperator`
        (``since_last_run=True``) or read their details.

        :param jobmojito_conn_id: the Airflow connection.
        :param poll_interval: seconds between polls.
        :param include_test: fire for test results (``is_test``) too.
        :param filters: the list's filters (``type``, ``tab``, ``interview_id``...), as
            :meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.iter_results` takes them.
        :param hook_params: keyword arguments for the hook.
        """

        #: What the triggers share; a class attribute, so a test may give the triggers another.
        shared: ClassVar[SharedPolls] = SHARED_POLLS
        #: The longest wait after permanent errors, in poll intervals.
        MAX_BACKOFF_INTERVALS: ClassVar[int] = 8

        @staticmethod
        async def sleep(seconds: float) -> None:
            """Wait between polls (a test may replace it)."""
            await asyncio.sleep(seconds)

        def __init__(
            self,
            *,
            jobmojito_conn_id: str = "jobmojito_default",
            poll_interval: float = 60.0,
            include_test: bool = False,
            filters: dict[str, Any] | None = None,
            hook_params: dict[str, Any] | None = None,
        ) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            if not isinstance(include_test, bool):
                raise ValueError(f"include_test must be True or False; got {include_test!r}.")
            if (
                isinstance(poll_interval, bool)
                or not isinstance(poll_interval, int | float)
                or poll_interval <= 0
            ):
                raise ValueError(f"poll_interval must be a number of seconds above 0; got {poll_interval!r}.")
            self.filters = dict(filters or {})
            check_result_filters(self.filters)
            self.jobmojito_conn_id = jobmojito_conn_id
            self.poll_interval = float(poll_interval)
            self.include_test = include_test
            self.hook_params = dict(hook_params or {})

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (
                f"{type(self).__module__}.{type(self).__qualname__}",
                {
                    "jobmojito_conn_id": self.jobmojito_conn_id,
                    "poll_interval": self.poll_interval,
                    "include_test": self.include_test,
                    "filters": self.filters,
                    "hook_params": self.hook_params,
                },
            )

        def shared_stream_key(self) -> Hashable | None:
            """Watches with the same connection, filters and interval share one poll (3.3)."""
            return ("jobmojito-results", json.dumps(self.serialize()[1], sort_keys=True, default=str))

        def watermark_key(self) -> str:
            """This watch's key in its asset's state store."""
            digest = hashlib.sha256(self.shared_stream_key()[1].encode()).hexdigest()[:16]  # type: ignore[index]
            return f"jobmojito.results.{self.jobmojito_conn_id}.{digest}"

        @classmethod
        async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
            """The shared poll: one raw item per successful poll, ``{"rows", "start", "horizon"}``:
            the rows new since the last poll (``[]`` for none), where the stream started, and
            where the next poll starts (the watermark a watch stores once this poll's event is sent)."""
            hook = cls.shared.hook(kwargs["jobmojito_conn_id"], kwargs.get("hook_params") or {})
            filters, include_test = kwargs.get("filters") or {}, bool(kwargs.get("include_test"))
            interval = float(kwargs["poll_interval"])
            horizon: _Horizon | None = None
            start: datetime | None = None
            wait, trouble = interval, None
            while True:
                try:
                    await hook.arefresh_connection()
                    baseline = horizon is None
                    if horizon is None:
                        horizon = await _baseline(hook, filters, include_test)
                        start = horizon.after
                        log.info("Watching results from %s (the newest result now).", start.isoformat())
                        rows: list[dict[str, Any]] = []
                    else:
                        rows = [
                            row
                            async for row in hook.aiter_results(
                                updated_after=horizon.after, include_test=include_test, **filters
                            )
                        ]
                except JobMojitoError as error:
                    if str(error) != trouble:
                        trouble = str(error)
                        log.warning(
                            "Watching results: %s; %s.",
                            error,
                            "trying again" if error.transient else "backing off",
                        )
                    if not error.transient:
                        wait = min(wait * 2, interval * cls.MAX_BACKOFF_INTERVALS)
                else:
                    trouble, wait = None, interval
                    fresh = horizon.take(rows)
                    yield {"rows": fresh, "start": start, "horizon": horizon.to_json(), "baseline": baseline}
                await cls.sleep(wait)

        async def filter_shared_stream(
            self, shared_stream: AsyncIterator[Any]
        ) -> AsyncIterator[TriggerEvent]:
            store = getattr(self, "asset_state_store", None)
            pending: _Horizon | None = None
            first = True
            async for item in shared_stream:
                rows: list[dict[str, Any]] = item["rows"]
                if first:
                    first = False
                    if item.get("baseline", True):
                        rows = await self._since_watermark(store, item["start"]) + rows
                    else:
                        # Joined a poll already running (after a restart the watches of one key
                        # re-subscribe one by one): what it broadcast before this watch joined
                        # was not seen here, so read up to now (at least once: a result changed
                        # since this poll may fire again with the next).
                        given = {(row.get("id"), row.get("updated_at")) for row in rows}
                        missed = await self._since_watermark(store, None)
                        rows = [r for r in missed if (r.get("id"), r.get("updated_at")) not in given] + rows
                if pending is not None:
                    # The previous poll's events have been sent by now: its watermark may be stored.
                    await self._store(store, pending)
                    pending = None
                if rows:
                    yield TriggerEvent(_payload(rows))  # type: ignore[no-untyped-call]
                    pending = _Horizon.from_json(item["horizon"])

        async def _since_watermark(self, store: Any, start: datetime | None) -> list[dict[str, Any]]:
            """After a restart: the results updated between the stored watermark and the shared
            poll's start (``None``: now, for a watch that joined a running poll) that the watch
            before the restart did not fire."""
            if store is None:
                return []
            try:
                stored = _Horizon.from_json(await store.aget(self.watermark_key()))
            except Exception as error:  # a failing store must not end the watch
                self.log.warning("Watching results: could not read the watermark (%s).", type(error).__name__)
                return []
            if stored is None or (start is not None and stored.after >= start):
                return []
            hook = self.shared.hook(self.jobmojito_conn_id, self.hook_params)
            missed = [
                row
                async for row in hook.aiter_results(
                    updated_after=stored.after,
                    updated_before=start + timedelta(microseconds=1) if start is not None else None,
                    include_test=self.include_test,
                    **self.filters,
                )
                if stored.seen.get(str(row.get("id"))) != row.get("updated_at")
            ]
            self.log.info(
                "Watching results again from the watermark %s: %d result(s) changed while the watch "
                "was down.",
                stored.after.isoformat(),
                len(missed),
            )
            return missed

        async def _store(self, store: Any, horizon: _Horizon) -> None:
            if store is None:
                return
            try:
                await store.aset(self.watermark_key(), horizon.to_json())
            except Exception as error:  # a failing store must not end the watch
                self.log.warning(
                    "Watching results: could not store the watermark (%s).", type(error).__name__
                )

        async def run(self) -> AsyncIterator[TriggerEvent]:
            """Before 3.3 (no shared streams), or when run on its own: the same poll, unshared."""
            kwargs = self.serialize()[1]
            async for event in self.filter_shared_stream(type(self).open_shared_stream(kwargs)):
                yield event


def _payload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    stamps = [str(row.get("updated_at")) for row in rows if row.get("updated_at")]
    return {
        "ids": [row.get("id") for row in rows],
        "interview_result_ids": [row.get("interview_result_id") for row in rows],
        "count": len(rows),
        "updated_at_newest": max(stamps) if stamps else None,
    }


def __getattr__(name: str) -> Any:
    if name == "InterviewResultChangeTrigger":
        raise ImportError(
            "InterviewResultChangeTrigger needs Airflow 3.0 or later (BaseEventTrigger and AssetWatcher "
            "start DAG runs from events); this is Airflow 2. Schedule InterviewResultsToStorageOperator "
            "instead."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
