"""The JobMojito hook: the Airflow connection, and one method per API endpoint.

The HTTP work is the client layer's: :mod:`~airflow_provider_jobmojito.client` (retries, sign-in
again on a 401, typed errors), :mod:`~airflow_provider_jobmojito.auth` (the token provider) and
:mod:`~airflow_provider_jobmojito.transport` (the wire). The hook reads the connection, builds the
client once, and names the calls.
"""

from __future__ import annotations

import asyncio
import platform
import time
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_jobmojito import __version__
from airflow_provider_jobmojito.answers import SET_STATE_PATH, scrub
from airflow_provider_jobmojito.auth import TokenProvider
from airflow_provider_jobmojito.bulk import StateChangeResult, apply_all, failure_report
from airflow_provider_jobmojito.client import JobMojitoClient
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoBulkError,
    JobMojitoError,
    JobMojitoUnavailableError,
    JobMojitoUnexpectedAnswerError,
)
from airflow_provider_jobmojito.masking import SecretBatch, mask
from airflow_provider_jobmojito.retry import Stop
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.transport import JobMojitoSession, PooledAdapter, RequestsTransport
from airflow_provider_jobmojito.validation import (
    StateChange,
    build_changes,
    check_failures_in_a_row,
    check_max_workers,
    parse_position_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from airflow_provider_jobmojito.client_async import AsyncJobMojitoClient
    from airflow_provider_jobmojito.status import InterviewStatus

GET_INTERVIEW_PATH = "job-interview-get"
LIST_INTERVIEWS_PATH = "merchant-interview-list"

USER_AGENT = (
    f"airflow-provider-jobmojito/{__version__} requests/{requests.__version__} "
    f"python/{platform.python_version()}"
)


class EmbedKeys(TypedDict):
    """What the API returns when embedding is switched on."""

    embed_id: str
    embed_signing_key: str


class JobMojitoHook(BaseHook):
    """Talk to the JobMojito API through an Airflow connection of type ``jobmojito``.

    The connection's host is the API base URL (empty means production). Its password is either a
    static access token (a Supabase JWT), or, when login holds an e-mail, that account's password:
    the hook then signs in and caches the access token for the process.

    Keyword arguments override the connection extras of the same name.

    :param jobmojito_conn_id: the Airflow connection to use.
    :param timeout: seconds to wait for each attempt of an HTTP call (default 30).
    :param max_retries: retries of transient failures after the first attempt (default 5).
    :param backoff_factor: seconds; the cap of the first backoff, doubling per retry (default 0.5).
    :param backoff_max: seconds; the longest backoff, and the longest ``Retry-After`` obeyed (default 30).
    :param supabase_url: sign-in mode: the Supabase project URL (default: the API host's origin).
    :param supabase_anon_key: sign-in mode: sent as the ``apikey`` header.
    :param embed_base_url: the base of iframe URLs built by :meth:`embed_url`.
    """

    conn_name_attr = "jobmojito_conn_id"
    default_conn_name = "jobmojito_default"
    conn_type = "jobmojito"
    hook_name = "JobMojito"

    # -- the connection form (Airflow 2.11 to 3.1) -----------------------------------------------
    # Airflow 3.2 and later build the form from ``conn-fields`` and ``ui-field-behaviour`` in the
    # provider info and never call these two; older lines call them. Both forms are derived from
    # the same constants in ``airflow_provider_jobmojito``. wtforms and flask_appbuilder are
    # imported here, not at module level: workers and a plain Airflow 3 install have neither.

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form, as wtforms fields (Airflow 2.11 to 3.1)."""
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from wtforms import IntegerField, PasswordField, StringField
        from wtforms.validators import NumberRange, Optional

        from airflow_provider_jobmojito import _CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, field in _CONN_FIELDS.items():
            schema = field["schema"]
            label, description = field["label"], field.get("description", "")
            if schema.get("format") == "password":
                widgets[name] = PasswordField(label, description=description, widget=BS3PasswordFieldWidget())
            elif "integer" in schema["type"]:
                widgets[name] = IntegerField(
                    label,
                    description=description,
                    validators=[Optional(), NumberRange(min=schema.get("minimum"))],
                    widget=BS3TextFieldWidget(),
                )
            else:
                # Airflow 2's form allows no FloatField: a number is typed as text, and the hook
                # casts and checks it (a URI connection's extras are strings anyway).
                widgets[name] = StringField(label, description=description, widget=BS3TextFieldWidget())
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder standard fields of the form (Airflow 2.11 to 3.1)."""
        import copy

        from airflow_provider_jobmojito import _UI_FIELD_BEHAVIOUR

        # The provider info spells the keys in kebab-case ("hidden-fields"), these in snake_case.
        return {key.replace("-", "_"): copy.deepcopy(value) for key, value in _UI_FIELD_BEHAVIOUR.items()}

    def __init__(
        self,
        jobmojito_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_factor: float | None = None,
        backoff_max: float | None = None,
        supabase_url: str | None = None,
        supabase_anon_key: str | None = None,
        embed_base_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.jobmojito_conn_id = jobmojito_conn_id
        # Only remembered here: the connection is read on first use, never at DAG parse time.
        self._overrides: dict[str, Any] = {
            "timeout": timeout,
            "max_retries": max_retries,
            "backoff_factor": backoff_factor,
            "backoff_max": backoff_max,
            "supabase_url": supabase_url,
            "supabase_anon_key": supabase_anon_key,
            "embed_base_url": embed_base_url,
        }
        # What the running set_interview_states call shares to stop (cancel() sets it); None
        # between calls, so a cancel with nothing running stops no later call.
        self._bulk_stop: Stop | None = None
        self._async_client: AsyncJobMojitoClient | None = None
        self._async_client_lock: asyncio.Lock | None = None

    # -- configuration -------------------------------------------------------------------------

    @cached_property
    def settings(self) -> HookSettings:
        """The connection merged with the hook's arguments, read once and validated."""
        return self._resolve(self.get_connection(self.jobmojito_conn_id))

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
            if secret:
                mask(secret)
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
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # No urllib3 retries: the client's own honour Retry-After and know which calls are safe.
        session.mount("https://", PooledAdapter())
        session.mount("http://", PooledAdapter())
        return session

    @cached_property
    def client(self) -> JobMojitoClient:
        """The API client: tokens, retries and typed errors (:mod:`~airflow_provider_jobmojito.client`)."""
        settings = self.settings
        tokens = TokenProvider(settings, self.jobmojito_conn_id, log=self.log)
        return JobMojitoClient(settings, tokens, RequestsTransport(self.get_conn()), log=self.log)

    async def async_client(self) -> AsyncJobMojitoClient:
        """The async API client (for triggers), built once (:mod:`~airflow_provider_jobmojito.client_async`).

        The connection is read without blocking the event loop: asynchronously where Airflow
        offers it, and what may block (Airflow 3's secret masking, which waits for the
        supervisor) in a worker thread.
        """
        if self._async_client is not None:
            return self._async_client
        if self._async_client_lock is None:  # no await since the check: one lock per hook
            self._async_client_lock = asyncio.Lock()
        async with self._async_client_lock:  # callers arriving together build one client
            if self._async_client is None:
                import httpx

                from airflow_provider_jobmojito.client_async import AsyncJobMojitoClient, HttpxTransport

                conn = await _get_async_connection(self.jobmojito_conn_id)
                settings = await asyncio.to_thread(self._resolve, conn)
                tokens = await asyncio.to_thread(TokenProvider, settings, self.jobmojito_conn_id, self.log)
                http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=16))
                transport = HttpxTransport(http, {"User-Agent": USER_AGENT, "Accept": "application/json"})
                self._async_client = AsyncJobMojitoClient(settings, tokens, transport, log=self.log)
        return self._async_client

    async def aget_interview(self, position_id: str) -> dict[str, Any]:
        """:meth:`get_interview`, on an event loop."""
        params = {"position_id": parse_position_id(position_id)}
        return await (await self.async_client()).call("GET", GET_INTERVIEW_PATH, params=params)

    async def alist_interviews(self, **params: str | int) -> dict[str, Any]:
        """:meth:`list_interviews`, on an event loop."""
        return await (await self.async_client()).call("GET", LIST_INTERVIEWS_PATH, params=params)

    if TYPE_CHECKING:  # here rather than at the top, so this stand-in stays one hunk
        from collections.abc import AsyncIterator

    async def aiter_interview_pages(self, **filters: str | int) -> AsyncIterator[dict[str, Any]]:
        """Every page of :meth:`alist_interviews` with ``filters``, 1,000 rows a page, in order.

        A stand-in for the triggers' tests until the endpoint layer's own version is merged. Stops
        at an empty page or when ``has_more`` is false, and after 10,000 pages at most, so an API
        that always claims more cannot keep a caller paging forever.

        :param filters: ``status``, ``type``, ``filter``... as :meth:`list_interviews` takes them.
        """
        offset = 0
        for _ in range(10_000):
            page = await self.alist_interviews(**filters, limit=1000, offset=offset)
            yield page
            rows = page.get("data") or []
            if not rows or not (page.get("pagination") or {}).get("has_more"):
                return
            offset += len(rows)

    async def aclose(self) -> None:
        """Close the async client's connections."""
        if self._async_client is not None:
            await self._async_client.transport.client.aclose()
            self._async_client = None

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

    def apply(
        self, change: StateChange, *, stop: Stop | None = None, mask_key: Callable[[str], None] = mask
    ) -> dict[str, Any]:
        """Send one validated :class:`~airflow_provider_jobmojito.validation.StateChange`.

        :param stop: what the calls of a bulk change share: once set, retries stop.
        :param mask_key: registers the signing key in the answer, if any, with the secret masker
            (by default at once; a bulk call collects the keys and registers them together).
        """
        # The call is idempotent (setting a state twice changes nothing, and is_embedded=true
        # returns the existing key), so retrying this POST after a lost answer is safe.
        answer = self.client.call(
            "POST", SET_STATE_PATH, json=change.body(), subject=f"position {change.position_id}", stop=stop
        )
        signing_key = answer.get("embed_signing_key")
        if isinstance(signing_key, str):
            mask_key(signing_key)
        has_id, has_key = isinstance(answer.get("embed_id"), str), isinstance(signing_key, str)
        if has_id != has_key or (change.is_embedded is True and not has_id):
            # Callers rely on the two coming together; say so here rather than fail on a lookup.
            raise JobMojitoUnexpectedAnswerError(
                f"JobMojito switched embedding on for position {change.position_id} but did not "
                "send both embed_id and embed_signing_key."
            )
        if answer.get("success") is not True and not has_id:
            # A 200 {"error": ...} from a proxy or a changed API must not pass for a change made.
            shape = _shape_of(answer, self.client.tokens.secrets())
            raise JobMojitoUnexpectedAnswerError(
                f"JobMojito answered POST /{SET_STATE_PATH} for position {change.position_id} without "
                f"confirming the change (it sent {shape}); the change may or may not have been made: "
                "check the position.",
            )
        return answer

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
            return self._apply_all(changes, workers, stop)
        finally:
            self._bulk_stop = None

    def _apply_all(self, changes: Sequence[StateChange], workers: int, stop: Stop) -> list[StateChangeResult]:
        # Read the connection and get a token once, before the threads start: a missing, expired
        # or refused credential fails the whole call here instead of once per position.
        client = self.client
        client.token(stop)
        workers = min(workers, len(changes))
        client.transport.ensure_pool(self.base_url, workers)
        self.log.info(
            "Setting %d position(s) -> %s, %d call(s) at a time.", len(changes), changes[0].summary, workers
        )
        started = time.monotonic()
        # The signing keys are registered with the secret masker together, once every position
        # was attempted (one regex compile, not one per key), and before the results are returned
        # or raised: nothing logs a key before then.
        with SecretBatch() as signing_keys:
            apply = partial(self.apply, stop=stop, mask_key=signing_keys.add)
            results = apply_all(changes, apply, max_workers=workers, stop=stop)
        failed = [result for result in results if not result.ok]
        elapsed = time.monotonic() - started
        if failed:
            self.log.error("%s", failure_report(failed, len(results)))
            raise JobMojitoBulkError.from_results(results)
        self.log.info("Changed %d position(s) at %s in %.2f s.", len(results), self.base_url, elapsed)
        return results

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
        return self.client.call(
            "GET", GET_INTERVIEW_PATH, params={"position_id": parse_position_id(position_id)}
        )

    def list_interviews(self, **params: str | int) -> dict[str, Any]:
        """List the account's interviews (``GET merchant-interview-list``).

        :param params: the endpoint's query parameters, e.g. ``status="active", limit=100``.
        :return: ``{"data": [...], "pagination": {...}}``.
        """
        return self.client.call("GET", LIST_INTERVIEWS_PATH, params=params)

    def embed_url(self, embed_id: str) -> str:
        """The iframe URL for ``embed_id``, e.g. ``https://try.interviewmojito.com/embed?embed_id=...``."""
        return f"{self.settings.embed_base_url}?{urlencode({'embed_id': embed_id})}"

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection with a read call that changes nothing, and say what to fix."""
        try:
            settings = self.settings
            answer = self.client.call("GET", LIST_INTERVIEWS_PATH, params={"limit": 1}, max_retries=0)
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


def _shape_of(answer: dict[str, Any], secrets: Iterable[str]) -> str:
    """The keys of an answer, and its ``error`` text scrubbed: never other values, which could be
    secret."""
    keys = ", ".join(sorted(answer)[:10]) or "no keys"
    error = scrub(answer.get("error"), secrets) if isinstance(answer.get("error"), str) else None
    text = f": error {error[:200]!r}" if error else ""
    return f"{{{keys}}}{text}"


async def _get_async_connection(conn_id: str) -> Any:
    """The connection, read the way a trigger must: never a blocking call on the event loop."""
    try:
        from airflow.providers.common.compat.connection import get_async_connection
    except ImportError:  # common-compat before 1.23: the sync lookup, in a worker thread
        return await asyncio.to_thread(BaseHook.get_connection, conn_id)
    return await get_async_connection(conn_id)
