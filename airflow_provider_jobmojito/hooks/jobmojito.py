"""The JobMojito hook: Airflow glue. Connection -> settings -> client, and one method per endpoint.

The hook reads the connection (:mod:`~airflow_provider_jobmojito.settings`), builds the endpoint
plans (:mod:`~airflow_provider_jobmojito.endpoints`) and the two drivers that carry them out: the
sync one on requests (:mod:`~airflow_provider_jobmojito.client`) for tasks, the async one on httpx
(:mod:`~airflow_provider_jobmojito.client_async`) for triggers. Every decision (retries, tokens,
sign-in, what an answer means) is in those layers, once for both drivers; the hook only names the
calls, runs a bulk change, and tests the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import platform
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast
from urllib.parse import urlencode

import requests
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_provider_jobmojito import __version__, connection
from airflow_provider_jobmojito.auth import TokenProvider
from airflow_provider_jobmojito.bulk import StateChangeResult, change_all
from airflow_provider_jobmojito.client import JobMojitoClient
from airflow_provider_jobmojito.endpoints import Endpoints
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoConfigError,
    JobMojitoError,
    JobMojitoUnavailableError,
)
from airflow_provider_jobmojito.masking import mask
from airflow_provider_jobmojito.results import check_results_read
from airflow_provider_jobmojito.retry import Stop
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.transport import JobMojitoSession, PooledAdapter, RequestsTransport
from airflow_provider_jobmojito.validation import (
    StateChange,
    build_changes,
    check_failures_in_a_row,
    check_max_workers,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
    from datetime import datetime

    from airflow_provider_jobmojito.client_async import AsyncJobMojitoClient
    from airflow_provider_jobmojito.plan import Dated, Plan
    from airflow_provider_jobmojito.status import InterviewStatus

T = TypeVar("T")

USER_AGENT = (
    f"airflow-provider-jobmojito/{__version__} requests/{requests.__version__} "
    f"python/{platform.python_version()}"
)


_APPLY_DEPRECATED = "JobMojitoHook.apply(stop=..., mask_key=...) is deprecated: use set_interview_states."


class EmbedKeys(TypedDict):
    """What the API returns when embedding is switched on."""

    embed_id: str
    embed_signing_key: str


class JobMojitoHook(BaseHook):
    """Talk to the JobMojito API through an Airflow connection of type ``jobmojito``.

    The connection's host is the API base URL (empty means production). Its password is either a
    static access token (a Supabase JWT), or, when login holds an e-mail, that account's password:
    the hook then signs in and caches the access token for the process.

    Keyword arguments override the connection extras of the same name (checked by name when
    the hook is built, by value when it first reads the connection).

    The connection is read on first use and kept. When the API refuses its credentials on a read
    (``get_interview``, ``list_interviews`` and their async twins, the first page of
    ``aiter_interview_pages``), the hook reads the connection again, and if it changed (a rotated
    token or password) makes the call once more with it; :meth:`refresh_connection` and
    :meth:`arefresh_connection` read it again on demand (the triggers do, once a round).

    :param jobmojito_conn_id: the Airflow connection to use.
    :param logger_name: the name of the hook's logger (Airflow's ``BaseHook`` argument).
    """

    conn_name_attr = "jobmojito_conn_id"
    default_conn_name = "jobmojito_default"
    conn_type = "jobmojito"
    hook_name = "JobMojito"

    # -- the connection form (Airflow 2.11 to 3.1) -----------------------------------------------
    # Airflow 3.2 and later build the form from ``conn-fields`` and ``ui-field-behaviour`` in the
    # provider info and never call these two; older lines call them. Both come from the one
    # declaration of the extras (:mod:`~airflow_provider_jobmojito.connection`).

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form, as wtforms fields (Airflow 2.11 to 3.1)."""
        return connection.form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder standard fields of the form (Airflow 2.11 to 3.1)."""
        return connection.ui_field_behaviour()

    def __init__(
        self, jobmojito_conn_id: str = default_conn_name, *, logger_name: str | None = None, **overrides: Any
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.jobmojito_conn_id = jobmojito_conn_id
        # Only remembered here: the connection is read on first use, never at DAG parse time.
        self._overrides = connection.check_overrides(overrides)
        # The running bulk change's stop (cancel() sets it); None between calls: no later call stops.
        self._bulk_stop: Stop | None = None
        # The sync side's reading of the connection: what it was (a digest), what it gave.
        self._fingerprint: str | None = None
        self._settings: HookSettings | None = None
        self._endpoints: Endpoints | None = None
        # The async side's: its endpoints and driver, the digest of the connection they were made
        # of, and how many times it was read (callers waiting meanwhile take the newest read).
        self._async_side: tuple[Endpoints, AsyncJobMojitoClient] | None = None
        self._async_fingerprint: str | None = None
        # Reads are numbered as they start (under the async lock, so one at a time); a caller that
        # asked for a fresh read may take another caller's only if that read started after it asked.
        self._async_read_starts = 0
        self._async_read_done = 0  # the number of the last read that finished
        self._async_side_lock: asyncio.Lock | None = None
        self._reread_trouble: str | None = None  # the failed re-read last logged, until one works

    @property
    def settings(self) -> HookSettings:
        """The connection merged with the hook's arguments, read on first use and validated."""
        if self._settings is None:
            with _explain_unreadable(self.jobmojito_conn_id):
                conn = self.get_connection(self.jobmojito_conn_id)
            self._use(conn)
        assert self._settings is not None
        return self._settings

    def _use(self, conn: Any) -> None:
        """Take ``conn`` as the sync side's connection (its endpoints are built on next use)."""
        settings = self._resolve(conn)
        self._fingerprint, self._settings, self._endpoints = _fingerprint_of(conn), settings, None

    def _resolve(self, conn: Any) -> HookSettings:
        settings = HookSettings.resolve(
            host=conn.host,
            port=conn.port,
            schema=conn.schema,
            login=conn.login,
            password=conn.password,
            extras=conn.extra_dejson,
            overrides=self._overrides,
        )
        for secret in (settings.password, settings.supabase_anon_key):
            mask(secret or "")  # nothing to mask when unset
        return settings

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``https://cool.jobmojito.com/functions/v1``."""
        return self.settings.base_url

    def get_conn(self) -> requests.Session:
        """The hook's HTTP session: reused across calls, so connections are kept alive.

        Every call goes through it: headers, proxies, TLS settings and adapters set on it apply.
        """
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = JobMojitoSession()
        session.headers.update(_HEADERS)
        # No urllib3 retries: the client's own honour Retry-After and know which calls are safe.
        session.mount("https://", PooledAdapter())
        session.mount("http://", PooledAdapter())
        return session

    @property
    def endpoints(self) -> Endpoints:
        """The endpoint plans of this connection (:mod:`~airflow_provider_jobmojito.endpoints`)."""
        endpoints = self._endpoints
        if endpoints is None:
            endpoints = self._endpoints = self._endpoints_for(self.settings)
        return endpoints

    def _endpoints_for(self, settings: HookSettings) -> Endpoints:
        return Endpoints(settings, TokenProvider(settings, self.jobmojito_conn_id, log=self.log), self.log)

    @cached_property
    def _transport(self) -> RequestsTransport:
        return RequestsTransport(self.get_conn())

    @cached_property
    def client(self) -> JobMojitoClient:
        """The sync driver (:mod:`~airflow_provider_jobmojito.client`): ``client.run(plan)``."""
        return JobMojitoClient(self._transport)

    async def async_client(self) -> AsyncJobMojitoClient:
        """The async driver, for triggers (:mod:`~airflow_provider_jobmojito.client_async`)."""
        return (await self._async())[1]

    async def _async(self) -> tuple[Endpoints, AsyncJobMojitoClient]:
        """The endpoints and the async driver, built once for the callers arriving together."""
        if self._async_side is not None:
            return self._async_side
        async with self._async_lock():
            if self._async_side is None:
                await self._aread_connection()
        assert self._async_side is not None
        return self._async_side

    def _async_lock(self) -> asyncio.Lock:
        if self._async_side_lock is None:  # no await since the check: one lock per hook
            self._async_side_lock = asyncio.Lock()
        return self._async_side_lock

    async def _aread_connection(self) -> bool:
        """Read the connection (holding the async lock); build the async side from it, or new
        endpoints over the same driver when it changed. Return whether it changed.

        The connection is read without blocking the event loop: asynchronously where Airflow
        offers it, and what may block (Airflow 3's secret masking, which waits for the
        supervisor; the token cache's folder) in a worker thread. The driver does not depend on
        the connection (a request carries its URL, token and timeout), so it outlives a change,
        and calls in flight finish with the endpoints they started with.
        """
        self._async_read_starts += 1
        number = self._async_read_starts
        try:
            with _explain_unreadable(self.jobmojito_conn_id):
                conn = await _get_async_connection(self.jobmojito_conn_id)
        finally:
            self._async_read_done = number
        fingerprint = _fingerprint_of(conn)
        side = self._async_side
        if side is not None and fingerprint == self._async_fingerprint:
            return False
        settings = await asyncio.to_thread(self._resolve, conn)
        endpoints = await asyncio.to_thread(self._endpoints_for, settings)
        if side is None:
            from airflow_provider_jobmojito.client_async import AsyncJobMojitoClient
            from airflow_provider_jobmojito.transport_async import HttpxTransport

            transport = await asyncio.to_thread(HttpxTransport, _HEADERS)  # loads CA certificates
            self._async_side, self._async_fingerprint = (
                (endpoints, AsyncJobMojitoClient(transport)),
                fingerprint,
            )
            return False
        self._async_side, self._async_fingerprint = (endpoints, side[1]), fingerprint
        self.log.info("Connection %r has changed: the calls from now on use it.", self.jobmojito_conn_id)
        await asyncio.to_thread(_forget_replaced, side[0], endpoints)
        return True

    def refresh_connection(self) -> bool:
        """Read the connection again; when it has changed since it was read (a digest of host,
        port, schema, login, password and extra differs), the next calls use it.

        Tokens signed in with credentials it no longer holds are forgotten. The first use of a
        hook reads the connection anyway: then this reads it, and returns ``False``.

        :return: whether it had changed.
        """
        with _explain_unreadable(self.jobmojito_conn_id):
            conn = self.get_connection(self.jobmojito_conn_id)
        self._reread_trouble = None
        if _fingerprint_of(conn) == self._fingerprint:
            return False
        before, old = self._settings, self._endpoints
        self._use(conn)
        if before is None:
            return False
        self.log.info("Connection %r has changed: the calls from now on use it.", self.jobmojito_conn_id)
        if old is not None:
            _forget_replaced(old, self.endpoints)
        return True

    async def arefresh_connection(self) -> bool:
        """:meth:`refresh_connection`, on an event loop, for the async calls.

        Callers arriving together share one read: one that finishes while a caller waits for the
        hook's lock is that caller's too. A read that fails (the connection being deleted and
        added again, Airflow's API briefly away) or gives settings that do not resolve leaves the
        hook on the connection it has, with a warning (once per new trouble); before the first
        read such an error is raised, as the first call would raise it.

        :return: whether it had changed.
        """
        return await self._arefresh(started_after_asking=False)

    async def _arefresh(self, *, started_after_asking: bool) -> bool:
        """Read the connection again, unless a read made while this caller waited for the lock
        serves it: any read that finished meanwhile, or with ``started_after_asking`` only one that
        also started after this caller asked."""
        starts, done = self._async_read_starts, self._async_read_done
        async with self._async_lock():
            if self._async_side is None:
                return await self._aread_connection()
            if self._async_read_done > starts if started_after_asking else self._async_read_done != done:
                return False
            try:
                changed = await self._aread_connection()
            except Exception as error:  # keep reading with what was read: the call will tell
                self._reread_failed(error)
                return False
        self._reread_trouble = None
        return changed

    def _reread_failed(self, error: Exception) -> None:
        trouble = f"{type(error).__name__}: {error}"
        if trouble != self._reread_trouble:
            self._reread_trouble = trouble
            self.log.warning(
                "Could not read connection %r again (%s); going on with it as it was read.",
                self.jobmojito_conn_id,
                trouble,
            )

    def _run_reading(self, plan_of: Callable[[Endpoints], Plan[T]]) -> T:
        """Run a read's plan; when the API refuses the credentials, read the connection again and,
        if it has changed, run it once more with it."""
        endpoints = self.endpoints
        try:
            return self.client.run(plan_of(endpoints))
        except JobMojitoAuthError:
            try:
                self.refresh_connection()
            except Exception as error:  # the refusal is what the caller must see
                self._reread_failed(error)
            if self.endpoints is endpoints:
                raise
            self.log.info("Trying again with connection %r as it is now.", self.jobmojito_conn_id)
        return self.client.run(plan_of(self.endpoints))

    async def _arun_reading(self, plan_of: Callable[[Endpoints], Plan[T]]) -> T:
        """:meth:`_run_reading`, on an event loop."""
        endpoints, client = await self._async()
        try:
            return await client.run(plan_of(endpoints))
        except JobMojitoAuthError:
            fresh = await self._arefreshed_after_refusal(endpoints)
            if fresh is None:
                raise
        return await client.run(plan_of(fresh))

    async def _arefreshed_after_refusal(self, refused: Endpoints) -> Endpoints | None:
        """After the API refused the credentials of ``refused``: the endpoints of the connection
        as it is now, or ``None`` when they are the same (the refusal stands)."""
        # Only a read that started after the refusal will do: one already under way may have
        # started before the rotation, and would give the refused credentials again.
        await self._arefresh(started_after_asking=True)
        assert self._async_side is not None  # built before the refused call
        endpoints = self._async_side[0]
        if endpoints is refused:
            return None
        self.log.info("Trying again with connection %r as it is now.", self.jobmojito_conn_id)
        return endpoints

    async def aclose(self) -> None:
        """Close the async driver's connections."""
        side, self._async_side = self._async_side, None
        if side is not None:
            await side[1].aclose()

    # -- the API ---------------------------------------------------------------------------------

    def set_interview_state(
        self,
        position_id: str,
        status: InterviewStatus | str | None = None,
        is_embedded: bool | None = None,
    ) -> dict[str, Any]:
        """Change a position's lifecycle status and/or its iframe embedding, in one call.

        Arguments are checked before anything is sent; a bad one raises ``ValueError`` naming it.

        :param position_id: the interview or position id (a UUID).
        :param status: one of ``draft, active, archived, deleted, preparing, completed``.
        :param is_embedded: ``True`` switches embedding on (the existing key is returned if there
            is one), ``False`` switches it off and deletes the key.
        :return: the API's answer: ``{"success": True}``, or ``{"embed_id", "embed_signing_key"}``
            when embedding is on. The signing key is registered with the secret masker at once.
        """
        return self.apply(StateChange.build(position_id, status, is_embedded))

    def apply(self, change: StateChange, **deprecated: Any) -> dict[str, Any]:
        """Send one validated :class:`~airflow_provider_jobmojito.validation.StateChange`.

        ``stop`` and ``mask_key`` (1.0.0) are accepted with a ``DeprecationWarning``: they belong
        to the bulk path, which no longer goes through this method.
        """
        if unknown := deprecated.keys() - {"stop", "mask_key"}:
            raise TypeError(f"apply() got unexpected keyword argument(s) {', '.join(sorted(unknown))}")
        if deprecated:
            warnings.warn(_APPLY_DEPRECATED, DeprecationWarning, stacklevel=2)
        plan = self.endpoints.set_state(change, stop=deprecated.get("stop"))
        return self.client.run(plan, on_secret=deprecated.get("mask_key") or mask)

    def set_interview_states(
        self,
        position_ids: Iterable[str],
        *,
        status: InterviewStatus | str | None = None,
        is_embedded: bool | None = None,
        max_workers: int = 8,
        failures_in_a_row: int | None = None,
    ) -> list[StateChangeResult]:
        """Make the same change to many positions, ``max_workers`` calls at a time.

        Everything is checked before anything is sent: each id as :meth:`set_interview_state`
        checks it, and an id listed twice is refused rather than silently merged. A bad argument
        raises ``ValueError`` naming it (and, for an id, its index and value).

        Each position is one call to the API, with the single call's timeout, retries (counted per
        position), error types, sign-in and masking of embed signing keys; the calls share one
        pool of up to ``max_workers`` keep-alive connections.

        :param position_ids: the interview or position ids (UUIDs), each at most once. None at all
            is allowed: nothing is sent and the result is empty.
        :param status: as for :meth:`set_interview_state`, applied to every position.
        :param is_embedded: as for :meth:`set_interview_state`, applied to every position.
        :param max_workers: calls in flight at once (a whole number, at least 1).
        :param failures_in_a_row: when this many attempts in a row fail transiently across the
            batch (no answer in between), the API is down: the call stops sending, and raises a
            retryable error at once instead of playing every position's retries. Default: twice
            ``max_workers``, at least 10; 0 never stops.
        :return: one :class:`~airflow_provider_jobmojito.bulk.StateChangeResult` per position, in
            input order, when every change was made.
        :raises ~airflow_provider_jobmojito.exceptions.JobMojitoBulkError: after every position was
            attempted, when any failed. It carries every result (``.results``) and the failures
            (``.failed``), and the failures are logged with their errors. When every failure is
            permanent it is a ``JobMojitoPermanentBulkError``, an ``AirflowFailException``.
        """
        changes = build_changes(position_ids, status, is_embedded)
        return self.apply_many(changes, max_workers=max_workers, failures_in_a_row=failures_in_a_row)

    def apply_many(
        self, changes: Sequence[StateChange], *, max_workers: int = 8, failures_in_a_row: int | None = None
    ) -> list[StateChangeResult]:
        """:meth:`set_interview_states` for changes already checked (one per position)."""
        workers = check_max_workers(max_workers)
        threshold = check_failures_in_a_row(failures_in_a_row, workers)
        if not changes:
            self.log.info("No position ids given: nothing to change.")
            return []
        # Created before anything is sent, so that a cancel during the sign-in is not lost.
        self._bulk_stop = stop = Stop(threshold)
        try:
            workers = min(workers, len(changes))
            endpoints = self.endpoints  # the connection is read here, before any thread starts
            self._transport.ensure_pool(self.base_url, workers)
            return change_all(self.client, endpoints, changes, workers=workers, stop=stop, log=self.log)
        finally:
            self._bulk_stop = None

    def cancel(self) -> None:
        """Stop a running :meth:`set_interview_states` from sending more positions.

        Safe to call from another thread or a signal handler (an operator's ``on_kill``). Calls
        already in flight finish, without further retries; positions not yet sent fail with a
        "not sent" error, so the call still raises
        :class:`~airflow_provider_jobmojito.exceptions.JobMojitoBulkError` with every position's result.
        """
        if self._bulk_stop is not None:
            self._bulk_stop.cancel()

    def enable_embedding(self, position_id: str) -> EmbedKeys:
        """Switch iframe embedding on and return the embed keys (the existing ones, if any).

        :param position_id: the interview or position id (a UUID).
        """
        answer = self.set_interview_state(position_id, is_embedded=True)
        return EmbedKeys(embed_id=answer["embed_id"], embed_signing_key=answer["embed_signing_key"])

    def disable_embedding(self, position_id: str) -> dict[str, Any]:
        """Switch iframe embedding off; the embed keys are deleted.

        :param position_id: the interview or position id (a UUID).
        """
        return self.set_interview_state(position_id, is_embedded=False)

    def get_interview(self, position_id: str) -> dict[str, Any]:
        """Read an interview or position definition (``GET job-interview-get``).

        :param position_id: the interview or position id (a UUID).
        """
        return self._run_reading(lambda endpoints: endpoints.get_position(position_id))

    async def aget_interview(self, position_id: str) -> dict[str, Any]:
        """:meth:`get_interview`, on an event loop."""
        return await self._arun_reading(lambda endpoints: endpoints.get_position(position_id))

    def list_interviews(self, **params: str | int) -> dict[str, Any]:
        """List the account's interviews, one page (``GET merchant-interview-list``).

        :param params: the endpoint's query parameters, e.g. ``status="active", limit=100``.
        :return: ``{"data": [...], "pagination": {"total", "limit", "offset", "has_more"}}``.
        """
        return self._run_reading(lambda endpoints: endpoints.list_positions(**params))

    async def alist_interviews(self, **params: str | int) -> dict[str, Any]:
        """:meth:`list_interviews`, on an event loop."""
        return await self._arun_reading(lambda endpoints: endpoints.list_positions(**params))

    def iter_interview_pages(
        self, *, page_size: int = 1000, **filters: str | int
    ) -> Iterator[dict[str, Any]]:
        """Every page of :meth:`list_interviews`, one at a time, bounded (see
        :meth:`~airflow_provider_jobmojito.endpoints.Endpoints.positions_pages`).

        :param page_size: rows per page, 1 to 1,000.
        :param filters: the endpoint's filters, e.g. ``status="active"``.
        """
        plan = self.endpoints.positions_pages(page_size=page_size, **filters)
        return self.client.pages(plan)

    def aiter_interview_pages(
        self, *, page_size: int = 1000, **filters: str | int
    ) -> AsyncIterator[dict[str, Any]]:
        """:meth:`iter_interview_pages`, on an event loop. Credentials refused before the first
        page read the connection again, as :meth:`aget_interview` does; after it, the error is
        raised (the pages already given would be given again)."""
        return self._apages(lambda endpoints: endpoints.positions_pages(page_size=page_size, **filters))

    async def _apages(self, plan_of: Callable[[Endpoints], Plan[None]]) -> AsyncIterator[Any]:
        """What the pager ``plan_of(endpoints)`` emits, on an event loop; credentials refused before
        the first page read the connection again, and the pager starts once more if it changed."""
        endpoints, client = await self._async()
        given = False
        try:
            # Closed as soon as this iterator is (a caller that stops early), not when collected.
            async with contextlib.aclosing(client.pages(plan_of(endpoints))) as pages:
                async for page in pages:
                    given = True
                    yield page
            return
        except JobMojitoAuthError:
            fresh = None if given else await self._arefreshed_after_refusal(endpoints)
            if fresh is None:
                raise
        async with contextlib.aclosing(client.pages(plan_of(fresh))) as pages:
            async for page in pages:
                yield page

    def iter_dated_interview_pages(self, *, page_size: int = 1000, **filters: str | int) -> Iterator[Dated]:
        """:meth:`iter_interview_pages`, each page with the time the API answered it: a
        :class:`~airflow_provider_jobmojito.plan.Dated` whose ``body`` is the page as the API gives
        it and ``date`` its ``Date`` header in POSIX seconds (``None`` if the answer had none).

        :param page_size: rows per page, 1 to 1,000.
        :param filters: the endpoint's filters, e.g. ``status="active"``.
        """
        return self.client.pages(self.endpoints.dated_positions_pages(page_size=page_size, **filters))

    def aiter_dated_interview_pages(
        self, *, page_size: int = 1000, **filters: str | int
    ) -> AsyncIterator[Dated]:
        """:meth:`iter_dated_interview_pages`, on an event loop, reading the connection again on
        refused credentials as :meth:`aiter_interview_pages` does."""
        return self._apages(lambda endpoints: endpoints.dated_positions_pages(page_size=page_size, **filters))

    def iter_results(
        self,
        *,
        updated_after: datetime,
        updated_before: datetime | None = None,
        include_test: bool = False,
        page_size: int = 1000,
        with_details: bool = False,
        signed_recordings: bool = False,
        detail_workers: int = 4,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """The interview results updated in ``[updated_after, updated_before)``, newest first, each
        once, one page in memory at a time (``merchant-result-list``; how shifting offsets,
        duplicates and a lying ``has_more`` are handled: :mod:`~airflow_provider_jobmojito.results`).

        Every argument is checked now, before any request; the rows come as the API gives them
        (dicts; ``id`` is the row's id, ``interview_result_id`` the one details and webhooks use).

        :param updated_after: the window's start (timezone-aware), included.
        :param updated_before: its end (timezone-aware), excluded; ``None``: none. Rows updated while
            the read runs are stamped after it began, so a read with no end can miss their new
            version: give an end at or before now to read a window that cannot change.
        :param include_test: give test results (``is_test``) too.
        :param page_size: rows per page, 2 to 1,000.
        :param with_details: add each result's ``job-interview-details`` answer as its
            ``"details"`` (one call per result, ``detail_workers`` at a time, a page at a time;
            ``None`` for a result whose ``interview_result_id`` is null).
        :param signed_recordings: with ``with_details``, ask for signed recording URLs; each is
            masked in logs (it grants access to the recording). Off by default.
        :param detail_workers: detail calls in flight at once (a whole number, at least 1).
        :param filters: ``type`` (a product type or a list of them; default ``interview``),
            ``tab``, ``step``, ``interview_id``, ``profile_interview_id``, ``merchant_id``,
            ``risks``, ``filter_text``, ``filter_emoji``.
        :raises ValueError: for a bad argument.
        """
        _check_details(with_details, signed_recordings, detail_workers)
        plan = self.endpoints.results_pages(
            updated_after=updated_after,
            updated_before=updated_before,
            include_test=include_test,
            page_size=page_size,
            **filters,
        )
        pages = self.client.pages(plan)
        if with_details:
            return self._detailed(pages, signed_recordings, detail_workers)
        return (row for page in pages for row in page)

    def _detailed(
        self, pages: Iterator[list[dict[str, Any]]], signed_recordings: bool, workers: int
    ) -> Iterator[dict[str, Any]]:
        """Each row of each page with its details, fetched ``workers`` at a time; the calls of one
        read share a breaker (:class:`~airflow_provider_jobmojito.retry.Stop`): once the API is
        plainly down, the rest stop retrying and the read fails at once."""
        stop = _details_breaker(workers)
        endpoints = self.endpoints
        self._transport.ensure_pool(self.base_url, workers)

        def fetch(row: dict[str, Any]) -> dict[str, Any]:
            if row.get("interview_result_id") is None:  # nullable in the list: nothing to fetch
                return {**row, "details": None}
            plan = endpoints.result_details(
                row["interview_result_id"], signed_recordings=signed_recordings, stop=stop
            )
            return {**row, "details": self.client.run(plan)}

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jobmojito-details") as pool:
            for page in pages:
                yield from pool.map(fetch, page)

    def aiter_results(
        self,
        *,
        updated_after: datetime,
        updated_before: datetime | None = None,
        include_test: bool = False,
        page_size: int = 1000,
        with_details: bool = False,
        signed_recordings: bool = False,
        detail_workers: int = 4,
        **filters: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """:meth:`iter_results`, on an event loop (same arguments, checked now). Credentials
        refused before the first page read the connection again, as :meth:`aiter_interview_pages`
        does."""
        _check_details(with_details, signed_recordings, detail_workers)
        arguments: dict[str, Any] = {
            "updated_after": updated_after,
            "updated_before": updated_before,
            "include_test": include_test,
            "page_size": page_size,
            **filters,
        }
        check_results_read(**arguments)
        pages = self._apages(lambda endpoints: endpoints.results_pages(**arguments))
        # _apages is an async generator: closed as soon as the rows' iterator is.
        generator = cast("AsyncGenerator[list[dict[str, Any]], None]", pages)
        return self._arows(generator, with_details, signed_recordings, detail_workers)

    async def _arows(
        self,
        pages: AsyncGenerator[list[dict[str, Any]], None],
        with_details: bool,
        signed: bool,
        workers: int,
    ) -> AsyncIterator[dict[str, Any]]:
        stop = _details_breaker(workers)
        gate = asyncio.Semaphore(workers)

        async def fetch(row: dict[str, Any]) -> dict[str, Any]:
            if row.get("interview_result_id") is None:  # nullable in the list: nothing to fetch
                return {**row, "details": None}
            async with gate:
                endpoints, client = await self._async()
                plan = endpoints.result_details(
                    row["interview_result_id"], signed_recordings=signed, stop=stop
                )
                return {**row, "details": await client.run(plan)}

        async with contextlib.aclosing(pages) as each:
            async for page in each:
                rows = await asyncio.gather(*map(fetch, page)) if with_details else page
                for row in rows:
                    yield row

    def list_results(self, **params: str | int) -> dict[str, Any]:
        """One page of interview results (``GET merchant-result-list``), as the API gives it; to
        read a window of results, :meth:`iter_results`.

        :param params: the endpoint's query parameters, e.g. ``order_by="updated_at_newest", limit=1``.
        :return: ``{"data": [...], "pagination": {"total", "limit", "offset", "has_more"}}``.
        """
        return self._run_reading(lambda endpoints: endpoints.list_results(**params))

    async def alist_results(self, **params: str | int) -> dict[str, Any]:
        """:meth:`list_results`, on an event loop."""
        return await self._arun_reading(lambda endpoints: endpoints.list_results(**params))

    def get_result_details(
        self, interview_result_id: str, *, signed_recordings: bool = False
    ) -> dict[str, Any]:
        """One result with its transcript and AI analysis (``GET job-interview-details``).

        :param interview_result_id: the result's ``interview_result_id`` (a UUID).
        :param signed_recordings: ask for signed recording URLs too (each masked in logs).
        """
        return self._run_reading(
            lambda endpoints: endpoints.result_details(
                interview_result_id, signed_recordings=signed_recordings
            )
        )

    async def aget_result_details(
        self, interview_result_id: str, *, signed_recordings: bool = False
    ) -> dict[str, Any]:
        """:meth:`get_result_details`, on an event loop."""
        return await self._arun_reading(
            lambda endpoints: endpoints.result_details(
                interview_result_id, signed_recordings=signed_recordings
            )
        )

    def embed_url(self, embed_id: str) -> str:
        """The iframe URL for ``embed_id``, e.g. ``https://try.interviewmojito.com/embed?embed_id=...``."""
        return f"{self.settings.embed_base_url}?{urlencode({'embed_id': embed_id})}"

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection with a read call that changes nothing, and say what to fix."""
        try:
            settings = self.settings
            answer = self.client.run(self.endpoints.check_connection())
        except JobMojitoAuthError as exc:
            return False, f"Authentication failed: {exc}"
        except JobMojitoUnavailableError as exc:
            return False, f"Could not reach JobMojito: {exc}"
        except JobMojitoError as exc:
            return False, str(exc)
        pagination = answer.get("pagination")
        total = pagination.get("total") if isinstance(pagination, dict) else None
        seen = f" ({total} interviews visible)" if isinstance(total, int) else ""
        return True, f"Connected to {settings.base_url}: the access token was accepted{seen}."


_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
JobMojitoHook.__doc__ = f"{(JobMojitoHook.__doc__ or '').rstrip()}\n{connection.param_docs('    ')}\n    "


def _details_breaker(workers: int) -> Stop:
    """The breaker the detail calls of one read share: it trips once twice as many attempts as
    there are calls in flight (at least 10) failed transiently in a row, with no answer between."""
    return Stop(max(10, 2 * workers))


def _check_details(with_details: object, signed_recordings: object, detail_workers: object) -> None:
    for name, value in (("with_details", with_details), ("signed_recordings", signed_recordings)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False; got {value!r}.")
    if signed_recordings and not with_details:
        raise ValueError("signed_recordings=True needs with_details=True (the URLs come with the details).")
    if isinstance(detail_workers, bool) or not isinstance(detail_workers, int) or detail_workers < 1:
        raise ValueError(f"detail_workers must be a whole number of at least 1; got {detail_workers!r}.")


def _fingerprint_of(conn: Any) -> str:
    """A digest of what the hook reads of a connection (host, port, schema, login, password,
    extra): whether it changed, cheaply. Only the digest is kept, never logged; it shows none of
    the values.

    :param conn: an Airflow connection.
    """
    read = [conn.host, conn.port, conn.schema, conn.login, conn.password, conn.extra]
    return hashlib.sha256(json.dumps(read, default=str).encode()).hexdigest()


def _forget_replaced(old: Endpoints, new: Endpoints) -> None:
    """The connection changed from ``old``'s credentials to ``new``'s: when they sign in as
    another account (another password, e-mail or sign-in URL), forget the old account's token."""
    before, after = old.calls.tokens, new.calls.tokens
    if before.account is not None and before.account != after.account:
        before.forget()


async def _get_async_connection(conn_id: str) -> Any:
    """The connection, read the way a trigger must: never a blocking call on the event loop."""
    try:
        from airflow.providers.common.compat.connection import get_async_connection
    except ImportError:  # common-compat before 1.23: the sync lookup, in a worker thread
        return await asyncio.to_thread(BaseHook.get_connection, conn_id)
    return await get_async_connection(conn_id)


def fernet_defect(airflow_version: str | None = None) -> str | None:
    """Why Airflow cannot decrypt the connections stored in its database here, or ``None``.

    Airflow 2 sets an attribute (``is_encrypted``) on cryptography's ``MultiFernet``, which takes
    none since cryptography 51: with a fernet key set, every stored password fails to decrypt, and
    Airflow says only that the connection "isn't defined". No requirement of this package can
    exclude cryptography 51 for Airflow 2 alone (a marker cannot see Airflow's version), so the
    defect is detected here, where it surfaces.

    :param airflow_version: the Airflow release to judge for; by default the installed one.
    """
    airflow = airflow_version or metadata.version("apache-airflow")
    if int(airflow.partition(".")[0]) >= 3:
        return None
    from airflow.providers.common.compat.sdk import conf

    if not conf.get("core", "fernet_key", fallback=""):
        return None  # Airflow 2 stores and reads passwords unencrypted, and needs no MultiFernet
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError:  # Airflow requires it; without it there is no MultiFernet to be wrong about
        return None
    probe = MultiFernet([Fernet(Fernet.generate_key())])
    try:
        probe.is_encrypted = True  # type: ignore[attr-defined]  # what Airflow 2's get_fernet() does
    except AttributeError:
        return (
            f"Airflow {airflow} cannot decrypt the passwords stored in its database with "
            f'cryptography {metadata.version("cryptography")}: pip install "cryptography<51", or '
            "install Airflow with its constraint file"
        )
    return None


@contextlib.contextmanager
def _explain_unreadable(conn_id: str) -> Iterator[None]:
    """Airflow's "isn't defined" for a connection it could not decrypt becomes an error naming the fix."""
    try:
        yield
    except AirflowNotFoundException as exc:
        defect = fernet_defect()
        if defect is None:
            raise
        raise JobMojitoConfigError(f"The connection {conn_id!r} could not be read: {defect}.") from exc
