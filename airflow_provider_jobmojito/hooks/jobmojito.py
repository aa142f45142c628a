"""The JobMojito hook: the Airflow connection, the access token, and every HTTP call to the API."""

from __future__ import annotations

import json as jsonlib
import platform
import threading
import time
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict
from urllib.parse import urlencode

import pendulum
import requests
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_jobmojito import __version__
from airflow_provider_jobmojito.auth import SIGN_IN_CACHE, SignedInToken, jwt_expiry
from airflow_provider_jobmojito.bulk import (
    JobMojitoBulkError,
    StateChangeResult,
    apply_all,
    build_changes,
    check_max_workers,
    failure_report,
)
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoClientError,
    JobMojitoConfigError,
    JobMojitoError,
    JobMojitoNotFoundError,
    JobMojitoServerError,
    JobMojitoUnavailableError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.masking import SecretBatch, mask
from airflow_provider_jobmojito.retry import RETRYABLE_STATUS_CODES, RetryPolicy, parse_retry_after
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.transport import Answer, NoAnswer, PooledAdapter, Transport
from airflow_provider_jobmojito.validation import StateChange, parse_position_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from airflow_provider_jobmojito.status import InterviewStatus

SET_STATE_PATH = "job-interview-set-state"
GET_INTERVIEW_PATH = "job-interview-get"
LIST_INTERVIEWS_PATH = "merchant-interview-list"

#: A static token this close to its expiry is still sent, with a warning.
EXPIRY_WARNING_WINDOW = pendulum.duration(minutes=10)
_EXPIRY_WARNING_SECONDS = EXPIRY_WARNING_WINDOW.total_seconds()
#: A signed-in token is reused until this long before it expires (or a tenth of its life).
SIGN_IN_REUSE_MARGIN = pendulum.duration(seconds=60)

_SERVER_ERROR_HINT = (
    " job-interview-set-state also answers 500 for a position id it does not know and for an "
    "authorization failure: check that the position exists and that this account may change it."
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
        self._warned_expiry_for: str | None = None
        # The static token and its expiry as a POSIX time, read once rather than on every call.
        self._static_token_expiry: tuple[str, pendulum.DateTime | None, float | None] | None = None
        # The running set_interview_states call's stop event (set by cancel()); None between
        # calls, so a cancel with nothing running stops no later call.
        self._bulk_cancel: threading.Event | None = None

    # -- configuration -------------------------------------------------------------------------

    @cached_property
    def settings(self) -> HookSettings:
        """The connection merged with the hook's arguments, read once and validated."""
        conn = self.get_connection(self.jobmojito_conn_id)
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
        """The hook's HTTP session: reused across calls, so connections are kept alive."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(
            {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            }
        )
        # No urllib3 retries: the hook's own honour Retry-After and know which calls are safe.
        adapter = PooledAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @cached_property
    def _transport(self) -> Transport:
        """Sends the hook's calls through the session's connection pools (see :mod:`.transport`)."""
        return Transport(self.get_conn())

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

    def set_interview_states(
        self,
        position_ids: Iterable[str],
        *,
        status: InterviewStatus | str | None = None,
        is_embedded: bool | None = None,
        max_workers: int = 8,
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
        :return: one :class:`~airflow_provider_jobmojito.bulk.StateChangeResult` per position, in
            input order, when every change was made.
        :raises ~airflow_provider_jobmojito.bulk.JobMojitoBulkError: after every position was
            attempted, when any failed. It carries every result (``.results``) and the failures
            (``.failed``), and the failures are logged with their errors. When every failure is
            permanent it is a ``JobMojitoPermanentBulkError``, an ``AirflowFailException``.
        """
        changes = build_changes(position_ids, status, is_embedded)
        workers = check_max_workers(max_workers)
        if not changes:
            self.log.info("No position ids given: nothing to change.")
            return []
        # Created before anything is sent, so that a cancel during the sign-in is not lost.
        self._bulk_cancel = cancel = threading.Event()
        try:
            return self._set_all(changes, workers, cancel)
        finally:
            self._bulk_cancel = None

    def _set_all(
        self, changes: list[StateChange], workers: int, cancel: threading.Event
    ) -> list[StateChangeResult]:
        # Read the connection and get a token once, before the threads start: a missing, expired
        # or refused credential fails the whole call here instead of once per position.
        settings = self.settings
        self._access_token()
        workers = min(workers, len(changes))
        self._grow_pool(workers)
        self.log.info(
            "Setting %d position(s) -> %s, %d call(s) at a time.",
            len(changes),
            changes[0].summary,
            workers,
        )
        started = time.monotonic()
        # The signing keys are registered with the secret masker together, once every position
        # was attempted (one regex compile, not one per key), and before the results are returned
        # or raised: nothing logs a key before then.
        with SecretBatch() as signing_keys:
            apply = partial(self.apply, mask_key=signing_keys.add)
            results = apply_all(changes, apply, max_workers=workers, cancel=cancel)
        failed = [result for result in results if not result.ok]
        elapsed = time.monotonic() - started
        if failed:
            self.log.error("%s", failure_report(failed, len(results)))
            raise JobMojitoBulkError.from_results(results)
        self.log.info("Changed %d position(s) at %s in %.2f s.", len(results), settings.base_url, elapsed)
        return results

    def cancel(self) -> None:
        """Stop a running :meth:`set_interview_states` from sending more positions.

        Safe to call from another thread or a signal handler (an operator's ``on_kill``). Calls
        already in flight finish, without further retries; positions not yet sent fail with a
        "not sent" error, so the call still raises
        :class:`~airflow_provider_jobmojito.bulk.JobMojitoBulkError` with every position's result.
        """
        if self._bulk_cancel is not None:
            self._bulk_cancel.set()

    def _grow_pool(self, connections: int) -> None:
        """Let the pool keep ``connections`` connections alive (and build the transport before
        the threads that share it start)."""
        adapter = self._transport.session.get_adapter(self.base_url)
        if isinstance(adapter, PooledAdapter):
            adapter.grow(connections)

    def apply(self, change: StateChange, *, mask_key: Callable[[str], None] = mask) -> dict[str, Any]:
        """Send one validated :class:`~airflow_provider_jobmojito.validation.StateChange`.

        :param mask_key: registers the signing key in the answer, if any, with the secret masker
            (by default at once; a bulk call collects the keys and registers them together).
        """
        # The call is idempotent (setting a state twice changes nothing, and is_embedded=true
        # returns the existing key), so retrying this POST after a lost answer is safe.
        answer = self._call(
            "POST", SET_STATE_PATH, json=change.body(), subject=f"position {change.position_id}"
        )
        signing_key = answer.get("embed_signing_key")
        if isinstance(signing_key, str):
            mask_key(signing_key)
        has_id, has_key = isinstance(answer.get("embed_id"), str), isinstance(signing_key, str)
        if has_id != has_key or (change.is_embedded is True and not has_id):
            # Callers rely on the two coming together; say so here rather than fail on a lookup.
            raise JobMojitoError(
                f"JobMojito switched embedding on for position {change.position_id} but did not "
                "send both embed_id and embed_signing_key."
            )
        return answer

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
        params = {"position_id": parse_position_id(position_id)}
        return self._call("GET", GET_INTERVIEW_PATH, params=params)

    def list_interviews(self, **params: str | int) -> dict[str, Any]:
        """List the account's interviews (``GET merchant-interview-list``).

        :param params: the endpoint's query parameters, e.g. ``status="active", limit=100``.
        :return: ``{"data": [...], "pagination": {...}}``.
        """
        return self._call("GET", LIST_INTERVIEWS_PATH, params=params)

    def embed_url(self, embed_id: str) -> str:
        """The iframe URL for ``embed_id``, e.g. ``https://try.interviewmojito.com/embed?embed_id=...``."""
        return f"{self.settings.embed_base_url}?{urlencode({'embed_id': embed_id})}"

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection with a read call that changes nothing, and say what to fix."""
        try:
            settings = self.settings
            answer = self._call("GET", LIST_INTERVIEWS_PATH, params={"limit": 1}, max_retries=0)
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

    # -- requests --------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """Call the API with a bearer token; map its errors to :mod:`~airflow_provider_jobmojito.exceptions`.

        In sign-in mode a 401 signs in again once: the cached token may have been revoked early.

        :param subject: what the call is about, for retry and give-up messages (``position <id>``).
        """
        settings = self.settings
        url = f"{settings.base_url}/{path}"
        query = {name: value for name, value in (params or {}).items() if value is not None}
        if query:
            url += "?" + urlencode(query, doseq=True)
        what = f"JobMojito {method} /{path}" + (f" for {subject}" if subject else "")
        signed_in_again = False
        while True:
            token = self._access_token()
            response = self._send(
                method,
                url,
                what=what,
                headers={"Authorization": f"Bearer {token}"},
                json=json,
                max_retries=max_retries,
            )
            if response.status == 401 and settings.signs_in and not signed_in_again:
                SIGN_IN_CACHE.discard(self._sign_in_key, token)
                signed_in_again = True
                self.log.info("JobMojito refused the signed-in token (401); signing in again.")
                continue
            if 300 <= response.status < 400:
                # Following would re-send the POST elsewhere, or turn it into a GET.
                raise JobMojitoConfigError(
                    f"{what} was redirected ({response.status}) to {response.headers.get('Location')!r}: "
                    "set the connection's host to the API base URL itself."
                )
            if response.status >= 400:
                self._raise_for(response, f"{method} /{path}")
            answer = _json_of(response, f"{method} /{path}")
            if not isinstance(answer, dict):
                # Every endpoint answers an object; anything else would fail later, less clearly.
                raise JobMojitoError(
                    f"JobMojito answered {response.status} to {method} /{path} with a JSON "
                    f"{type(answer).__name__}, not an object.",
                    status_code=response.status,
                )
            return answer

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str],
        json: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
    ) -> Answer:
        """Send one request, retrying transient failures with backoff; return the final answer.

        :param url: the full URL, query string included.
        :param json: the body, sent as JSON.
        """
        settings = self.settings
        policy = settings.retry
        if max_retries is not None:
            policy = RetryPolicy(max_retries, policy.backoff_factor, policy.backoff_max)
        transport = self._transport
        body: bytes | None = None
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False, separators=(",", ":")).encode()
            headers = {**headers, "Content-Type": "application/json"}
        attempts = policy.max_retries + 1
        for retry_number in range(attempts):
            failure: str
            retry_after: float | None = None
            status_code: int | None = None
            try:
                response = transport.send(method, url, headers=headers, body=body, timeout=settings.timeout)
            except NoAnswer as exc:
                if exc.permanent:
                    raise JobMojitoConfigError(f"{what} failed and no retry can help: {exc.reason}") from None
                if exc.timed_out:
                    failure = f"got no answer within {settings.timeout:g} s"
                else:
                    failure = f"could not be reached ({exc.reason})"
            else:
                if response.status not in RETRYABLE_STATUS_CODES:
                    return response
                status_code = response.status
                failure = f"answered {status_code}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > policy.backoff_max:
                raise JobMojitoUnavailableError(
                    f"{what} {failure} and asked to wait {retry_after:g} s before trying again, "
                    f"longer than backoff_max ({policy.backoff_max:g} s): giving up.",
                    status_code=status_code,
                )
            if retry_number + 1 == attempts:
                raise JobMojitoUnavailableError(
                    f"{what} {failure}; gave up after {attempts} attempt(s).",
                    status_code=status_code,
                )
            wait = retry_after if retry_after is not None else policy.backoff(retry_number)
            self.log.warning(
                "%s %s (attempt %d of %d); retrying in %.2f s.",
                what,
                failure,
                retry_number + 1,
                attempts,
                wait,
            )
            self._wait_before_retry(wait, f"{what} {failure}", status_code)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _wait_before_retry(self, seconds: float, failure: str, status_code: int | None) -> None:
        cancel = self._bulk_cancel
        if cancel is None:
            time.sleep(seconds)
        elif cancel.wait(seconds):
            # A stopped bulk call must not outlive its task by minutes of retries.
            raise JobMojitoUnavailableError(
                f"{failure}; stopped retrying: the bulk change was stopped.", status_code=status_code
            )

    def _raise_for(self, response: Answer, what: str) -> NoReturn:
        status = response.status
        error, field = _error_of(response)
        detail = f": {error}" if error else ""
        if field:
            detail += f" (field: {field})"
        message = f"JobMojito answered {status} to {what}{detail}."
        kwargs: dict[str, Any] = {"status_code": status, "error": error, "field": field}
        if status in (401, 403):
            raise JobMojitoAuthError(message + self._auth_hint(), **kwargs)
        if status == 422:
            raise JobMojitoValidationError(message, **kwargs)
        if status == 404:
            raise JobMojitoNotFoundError(message, **kwargs)
        if status < 500:
            raise JobMojitoClientError(message, **kwargs)
        hint = _SERVER_ERROR_HINT if status == 500 and SET_STATE_PATH in what else ""
        raise JobMojitoServerError(message + hint, **kwargs)

    def _raise_for_sign_in(self, response: Answer) -> NoReturn:
        """Refused credentials are permanent; a sign-in service that is down or misplaced is not
        a credentials problem, and saying so would send the user to change a good password."""
        settings = self.settings
        status = response.status
        error, _ = _error_of(response)
        reason = f"({status}): {error or 'no reason given'}."
        kwargs: dict[str, Any] = {"status_code": status, "error": error}
        if status >= 500:
            where = settings.supabase_url
            raise JobMojitoServerError(f"Supabase sign-in at {where} failed {reason}", **kwargs)
        if status not in _SIGN_IN_REFUSALS:
            raise JobMojitoConfigError(
                f"Supabase sign-in at {settings.supabase_url} answered {status}: check the connection's "
                "supabase_url (the project URL, without /auth/v1).",
                **kwargs,
            )
        raise JobMojitoAuthError(
            f"Sign-in to {settings.supabase_url} as {settings.login} was refused {reason}", **kwargs
        )

    def _auth_hint(self) -> str:
        if self.settings.signs_in:
            return " The signed-in account may not use this API, or its session was revoked."
        return (
            f" Check the access token in connection {self.jobmojito_conn_id!r}: it may be revoked, "
            "signed out, or belong to another environment."
        )

    # -- tokens ----------------------------------------------------------------------------------

    def _access_token(self) -> str:
        settings = self.settings
        if settings.signs_in:
            return self._signed_in_token()
        if not settings.password:
            raise JobMojitoConfigError(
                f"Connection {self.jobmojito_conn_id!r} has no access token: put it in the password "
                "field, or set login (e-mail) and password to sign in."
            )
        self._check_static_token(settings.password)
        return settings.password

    def _check_static_token(self, token: str) -> None:
        """Refuse an expired JWT before sending it; warn once when it is about to expire."""
        known = self._static_token_expiry
        if known is None or known[0] != token:
            expiry = jwt_expiry(token)
            known = (token, expiry, None if expiry is None else expiry.timestamp())
            self._static_token_expiry = known
        _, expires_at, expires_ts = known
        if expires_at is None or expires_ts is None:
            return
        # Plain POSIX times on the hot path: this runs before every call.
        remaining = expires_ts - time.time()
        if remaining > _EXPIRY_WARNING_SECONDS or (remaining > 0 and self._warned_expiry_for == token):
            return
        now = pendulum.now("UTC")
        if expires_at <= now:
            raise JobMojitoAuthError(
                f"The access token in connection {self.jobmojito_conn_id!r} expired at "
                f"{expires_at.to_iso8601_string()} ({expires_at.diff_for_humans()}). Put a fresh "
                "token in the connection's password, or set login (e-mail) and password so the hook "
                "signs in by itself.",
                status_code=None,
            )
        if expires_at - now < EXPIRY_WARNING_WINDOW and self._warned_expiry_for != token:
            self._warned_expiry_for = token
            self.log.warning(
                "The access token in connection %r expires at %s (%s).",
                self.jobmojito_conn_id,
                expires_at.to_iso8601_string(),
                expires_at.diff_for_humans(),
            )

    @cached_property
    def _sign_in_key(self) -> tuple[str, str, str]:
        settings = self.settings
        return SIGN_IN_CACHE.key(settings.supabase_url, settings.login, settings.password)

    def _signed_in_token(self) -> str:
        key = self._sign_in_key
        # A fresh cached token needs no lock; the lock is held across a sign-in on purpose, so
        # that threads finding the cache empty together sign in once, not once each.
        cached = SIGN_IN_CACHE.get(key)
        if cached is None:
            with SIGN_IN_CACHE.lock:
                cached = SIGN_IN_CACHE.get(key)
                if cached is None:
                    cached = self._sign_in()
                    SIGN_IN_CACHE.put(key, cached)
        return cached.access_token

    def _sign_in(self) -> SignedInToken:
        """Supabase's password grant: trade the e-mail and password for an access token."""
        settings = self.settings
        url = f"{settings.supabase_url}/auth/v1/token?grant_type=password"
        headers = {"apikey": settings.supabase_anon_key} if settings.supabase_anon_key else {}
        what = "Supabase sign-in"
        response = self._send(
            "POST",
            url,
            what=what,
            headers=headers,
            json={"email": settings.login, "password": settings.password},
        )
        if response.status >= 300:
            self._raise_for_sign_in(response)
        answer = _json_of(response, what)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise JobMojitoAuthError(f"{what} answered without an access_token.")
        mask(token)
        now = pendulum.now("UTC")
        # expires_in is relative, so a local clock that runs ahead cannot make every cached
        # token look expired; the JWT's absolute exp is the fallback.
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
            expires_at = now.add(seconds=lifetime)
        else:
            expires_at = jwt_expiry(token) or now.add(hours=1)
        margin = min(SIGN_IN_REUSE_MARGIN, (expires_at - now) / 10)
        self.log.info("Signed in to JobMojito as %s; token valid until %s.", settings.login, expires_at)
        return SignedInToken(access_token=token, expires_at=expires_at - margin)


USER_AGENT = (
    f"airflow-provider-jobmojito/{__version__} requests/{requests.__version__} "
    f"python/{platform.python_version()}"
)


#: How Supabase's password grant refuses credentials (400 invalid_grant, 422 a malformed
#: e-mail, 401/403 a wrong anon key); any other answer means the request went to the wrong place.
_SIGN_IN_REFUSALS = frozenset({400, 401, 403, 422})


def _json_of(response: Answer, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise JobMojitoError(
            f"JobMojito answered {response.status} to {what} with a body that is not JSON.",
            status_code=response.status,
        ) from None


def _error_of(response: Answer) -> tuple[str | None, str | None]:
    """The API's ``error`` text and ``name`` of the field, if the body has them.

    Only these two short fields are kept: a whole body could echo what was sent.
    Supabase's auth endpoints spell the text ``error_description`` or ``msg``.
    """
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    texts = (body.get(key) for key in ("error_description", "msg", "error", "message"))
    text = next((value for value in texts if isinstance(value, str)), None)
    field = body.get("name") if isinstance(body.get("name"), str) else None
    return text, field
