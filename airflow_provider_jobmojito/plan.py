"""The client's decisions, written once for both drivers: an API call as a *plan* of steps.

A plan is a generator. It builds the request, asks for a token and signs in when there is none,
yields :class:`Send` and receives the :class:`~airflow_provider_jobmojito.wire.Answer` (or the
:class:`~airflow_provider_jobmojito.wire.NoAnswer`), decides whether to retry and yields
:class:`Wait`, signs in again once after a 401, and returns the answer's JSON object or raises the
typed error the answer means. It does no I/O: what may block is a step the driver carries out.

========================  ================================================  =======================
step                      what the driver does                              what it sends back
========================  ================================================  =======================
:class:`Send`             send the request once through its transport       ``Answer | NoAnswer``
:class:`Wait`             sleep, returning early when the bulk stop is set  whether it was stopped
:class:`Blocking`         call a function that may block (the host token    its result
                          cache, the secret masker)
:class:`Secret`           register a secret with the masker (or collect     ``None``
                          it, for a bulk change)
:class:`Exclusive`        hold the account's sign-in locks while it runs    the inner plan's result
                          an inner plan
:class:`Emit`             hand an item (a page) to the caller of an         ``None``
                          iterator, and carry on when asked for the next
========================  ================================================  =======================

The synchronous driver (:mod:`~airflow_provider_jobmojito.client`, requests) and the asynchronous
one (:mod:`~airflow_provider_jobmojito.client_async`, httpx) differ only in how they carry the
steps out, so a decision cannot drift between them. The endpoints are plans too
(:mod:`~airflow_provider_jobmojito.endpoints`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar
from urllib.parse import urlencode

from airflow_provider_jobmojito.answers import object_of
from airflow_provider_jobmojito.exceptions import JobMojitoError
from airflow_provider_jobmojito.retry import Failure, Retrying, Stop, failure_of_status
from airflow_provider_jobmojito.wire import Answer, NoAnswer, Request, http_date

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_jobmojito.auth import TokenProvider
    from airflow_provider_jobmojito.settings import HookSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send ``request`` once, with ``token`` as the bearer; answer ``Answer | NoAnswer``."""

    request: Request
    token: str | None = field(repr=False)
    timeout: float


@dataclass(frozen=True)
class Wait:
    """Wait ``seconds`` before the next attempt; answer whether ``stop`` was set meanwhile."""

    seconds: float
    stop: Stop | None = None


@dataclass(frozen=True)
class Blocking:
    """Call ``function(*args)``, which may block (file locks, the masker); answer its result."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = field(default=(), repr=False)  # may be a token


@dataclass(frozen=True)
class Secret:
    """A secret the API just sent (an embed signing key): register it before anyone logs it."""

    value: str = field(repr=False)


@dataclass(frozen=True)
class Exclusive:
    """Run ``plan`` holding ``locks()`` (the account's sign-in locks); answer its result.

    :param account: which account the locks are for: the async driver also queues its own
        coroutines per account, so that they wait on the loop rather than in worker threads.
    """

    account: Hashable = field(repr=False)  # names the e-mail and a digest of the password
    locks: Callable[[], contextlib.AbstractContextManager[None]]
    plan: Plan[Any]


@dataclass(frozen=True)
class Emit:
    """Hand ``item`` (a page) to the caller of an iterator; answer ``None``."""

    item: Any = field(repr=False)


@dataclass(frozen=True)
class Dated:
    """An answer's JSON object, with the time the API answered it by its own clock.

    :param body: the JSON object, as :meth:`Calls.call` returns it.
    :param date_header: the answer's ``Date`` header as sent, or ``None`` when it had none; read
        (:attr:`date`) only by a caller that asks, so that a plain :meth:`Calls.call` parses no
        date.
    """

    body: dict[str, Any] = field(repr=False)
    date_header: str | None

    @property
    def date(self) -> float | None:
        """The ``Date`` header in POSIX seconds (whole seconds: the API's time was this or up to a
        second later), or ``None`` when the answer had none, or not a date."""
        return http_date(self.date_header)


Step: TypeAlias = Send | Wait | Blocking | Secret | Exclusive | Emit
#: A plan that returns a ``T``.
Plan: TypeAlias = Generator[Step, Any, T]


class Run(Generic[T]):
    """One plan being carried out, step by step, the same way by both drivers::

        run = Run(plan)
        for step in run:
            run.answer(carry_out(step))
        return run.result

    The plan is closed however the loop ends (its cleanups run).
    """

    def __init__(self, plan: Plan[T]) -> None:
        self._plan = plan
        self._answer: Any = None
        #: What the plan returned, once the loop is over.
        self.result: T | None = None

    def __iter__(self) -> Iterator[Step]:
        with contextlib.closing(self._plan):
            while True:
                try:
                    step = self._plan.send(self._answer)
                except StopIteration as done:
                    self.result = done.value
                    return
                self._answer = None
                yield step

    def answer(self, value: Any) -> None:
        """What the last step gave: sent into the plan when the next step is asked for."""
        self._answer = value


class Calls:
    """The plans every endpoint is made of: a call with its token, retries and typed errors.

    :param settings: the connection's settings (base URL, timeout, retry policy).
    :param tokens: gives the bearer token, and says how to sign in.
    :param log: where to log retries and sign-ins (the hook's logger: lines land in the task log).
    """

    def __init__(self, settings: HookSettings, tokens: TokenProvider, log: Any) -> None:
        self.settings = settings
        self.tokens = tokens
        self.log = log

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        subject: str | None = None,
        stop: Stop | None = None,
        server_error_hint: str = "",
    ) -> Plan[dict[str, Any]]:
        """Call the API; return its JSON object or raise the typed error its answer means.

        In sign-in mode a 401 signs in again once: the cached token may have been revoked early.
        :meth:`call_dated` also returns when the API answered.

        :param json: the JSON body, for any method.
        :param params: the query; ``None`` values are left out.
        :param max_retries: this call's retries, instead of the connection's.
        :param subject: what the call is about, for messages (``position <id>``).
        :param stop: shared by the calls of a bulk change: once set, retries stop; it also counts
            transient failures, to stop the batch when the API is down.
        :param server_error_hint: added to the message of a 500: what else it may mean here.
        """
        dated = yield from self.call_dated(
            method,
            path,
            json=json,
            params=params,
            max_retries=max_retries,
            subject=subject,
            stop=stop,
            server_error_hint=server_error_hint,
        )
        return dated.body

    def call_dated(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        subject: str | None = None,
        stop: Stop | None = None,
        server_error_hint: str = "",
    ) -> Plan[Dated]:
        """:meth:`call`, returning the JSON object with the answer's ``Date`` (a :class:`Dated`):
        for a caller that judges changes in the API's time rather than its own clock's."""
        request = self.request(method, path, json=json, params=params, subject=subject)
        signed_in_again = False
        while True:
            token = yield from self.token(stop)
            answer = yield from self.send(request, token=token, max_retries=max_retries, stop=stop)
            if (
                answer.status == 401
                and not signed_in_again
                and (yield Blocking(self.tokens.refused, (token,)))
            ):
                signed_in_again = True
                self.log.info("JobMojito refused the signed-in token (401); signing in again.")
                continue
            body = object_of(
                answer,
                f"{method} /{path}",
                auth_hint=self.tokens.auth_hint(),
                secrets=self.secrets(token),
                server_error_hint=server_error_hint,
            )
            return Dated(body, answer.headers.get("Date"))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        subject: str | None = None,
    ) -> Request:
        """The :class:`~airflow_provider_jobmojito.wire.Request` for an API call."""
        url = f"{self.settings.base_url}/{path}"
        query = {name: value for name, value in (params or {}).items() if value is not None}
        if query:
            url += "?" + urlencode(query, doseq=True)
        what = f"JobMojito {method} /{path}" + (f" for {subject}" if subject else "")
        if json is not None:
            return Request.with_json(method, url, json, what=what)
        return Request(method, url, what=what)

    def token(self, stop: Stop | None = None) -> Plan[str]:
        """A token to send: the static one, a cached sign-in, or a new sign-in.

        Callers finding no token sign in one at a time per account (threads and coroutines of
        this process, and the processes of this host): the first signs in, the others find its
        token once they get the locks.
        """
        token: str | None = yield Blocking(self.tokens.current)
        if token is None:
            token = yield Exclusive(self.tokens.account, self.tokens.sign_in_locks, self._sign_in(stop))
        assert token is not None  # _sign_in returns a token or raises
        return token

    def _sign_in(self, stop: Stop | None) -> Plan[str]:
        """Sign in, holding the account's locks: unless someone signed in meanwhile, or a sign-in
        has just failed on this host (then its error is raised at once: processes that queued
        behind a failing sign-in do not each replay the whole retry schedule)."""
        token: str | None = yield Blocking(self.tokens.current)  # someone may have signed in meanwhile
        if token is None:
            yield Blocking(self.tokens.recall_failed_sign_in)
            try:
                answer = yield from self.send(self.tokens.sign_in_request(), token=None, stop=stop)
            except JobMojitoError as error:
                # A stopped bulk change gave up on its own account, not the service's.
                if stop is None or not stop.is_set():
                    yield Blocking(self.tokens.remember_failed_sign_in, (error,))
                raise
            # Remembers a refusal itself: a step's error is raised in the driver, not in the plan.
            token = yield Blocking(self.tokens.accept_sign_in, (answer,))
        assert token is not None
        return token

    def send(
        self,
        request: Request,
        *,
        token: str | None,
        max_retries: int | None = None,
        stop: Stop | None = None,
    ) -> Plan[Answer]:
        """Send ``request``, retrying transient failures with backoff; return the final answer.

        :raises JobMojitoUnavailableError: when the retries are used up.
        :raises JobMojitoConfigError: when no retry can help (TLS, a request HTTP cannot carry).
        """
        timeout = self.settings.timeout
        retrying = Retrying(self.settings.retry.with_max_retries(max_retries), request.what)
        while True:
            outcome = yield Send(request, token, timeout)
            if isinstance(outcome, NoAnswer):
                failure = failure_of(outcome, timeout)
            else:
                failure_or_none = failure_of_status(outcome.status, outcome.headers.get("Retry-After"))
                if failure_or_none is None:
                    if stop is not None:
                        stop.answered()
                    return outcome  # type: ignore[no-any-return]
                failure = failure_or_none
            if stop is not None and not failure.permanent:
                stop.failed(failure)
            seconds = retrying.after(failure)
            log_retry(self.log, retrying, failure, seconds)
            if (stop is not None and stop.is_set()) or (yield Wait(seconds, stop)):
                raise retrying.stopped(
                    failure, (stop.reason if stop else None) or "the bulk change was stopped"
                )

    def secrets(self, token: str | None = None) -> tuple[str, ...]:
        """What a request may carry that no message may show (the token, password, anon key)."""
        return self.tokens.secrets(token)


def failure_of(exc: NoAnswer, timeout: float) -> Failure:
    """The :class:`~airflow_provider_jobmojito.retry.Failure` an attempt without an answer is."""
    if exc.permanent:
        return Failure(exc.reason, permanent=True)
    if exc.too_slow:
        return Failure(f"answered too slowly: {exc.reason}")
    if exc.timed_out:
        return Failure(f"got no answer within {timeout:g} s")
    return Failure(f"could not be reached ({exc.reason})")


def log_retry(log: Any, retrying: Retrying, failure: Failure, seconds: float) -> None:
    """The log line of a retry, e.g. ``... answered 503 (attempt 1 of 6); retrying in 0.50 s.``"""
    log.warning(
        "%s %s (attempt %d of %d); retrying in %.2f s.",
        retrying.what,
        failure.reason,
        retrying.attempt,
        retrying.policy.attempts,
        seconds,
    )
