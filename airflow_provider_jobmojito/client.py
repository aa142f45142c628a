"""The sync API client: one call = a token, attempts with retries, and an answer's meaning.

The pieces it joins are transport-agnostic and shared with an async client: the retry decisions
(:mod:`~airflow_provider_jobmojito.retry`), the token provider
(:mod:`~airflow_provider_jobmojito.auth`) and the status-to-exception mapping
(:mod:`~airflow_provider_jobmojito.answers`). Only the sending
(:mod:`~airflow_provider_jobmojito.transport`) and the waiting are its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_provider_jobmojito.answers import object_of
from airflow_provider_jobmojito.retry import Failure, Retrying, Stop, failure_of_status
from airflow_provider_jobmojito.transport import NoAnswer, Request

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_jobmojito.auth import TokenProvider
    from airflow_provider_jobmojito.settings import HookSettings
    from airflow_provider_jobmojito.transport import Answer, RequestsTransport


def wait(seconds: float, stop: Stop | None) -> bool:
    """Sleep ``seconds``; return early, with ``True``, if ``stop`` is set meanwhile."""
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)


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


def request_for(
    settings: HookSettings,
    method: str,
    path: str,
    *,
    json: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    subject: str | None = None,
) -> Request:
    """The :class:`~airflow_provider_jobmojito.transport.Request` for an API call.

    :param subject: what the call is about, for messages (``position <id>``).
    """
    url = f"{settings.base_url}/{path}"
    query = {name: value for name, value in (params or {}).items() if value is not None}
    if query:
        url += "?" + urlencode(query, doseq=True)
    what = f"JobMojito {method} /{path}" + (f" for {subject}" if subject else "")
    if json is not None:
        return Request.post_json(url, json, what=what)
    return Request(method, url, what=what)


class JobMojitoClient:
    """Calls the JobMojito API: tokens, retries with backoff, and typed errors.

    :param settings: the connection's settings (base URL, timeout, retry policy).
    :param tokens: gives the bearer token, and signs in when needed.
    :param transport: sends one attempt.
    :param log: where to log retries (the hook's logger, so lines land in the task log).
    """

    def __init__(
        self, settings: HookSettings, tokens: TokenProvider, transport: RequestsTransport, log: Any
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.transport = transport
        self.log = log
        #: How retries wait: ``wait(seconds, stop) -> stopped``. Tests replace it to assert the
        #: backoff without sleeping.
        self.wait: Callable[[float, Stop | None], bool] = wait

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
    ) -> dict[str, Any]:
        """Call the API; return its JSON object or raise the typed error its answer means.

        In sign-in mode a 401 signs in again once: the cached token may have been revoked early.

        :param max_retries: this call's retries, instead of the connection's.
        :param subject: what the call is about, for messages (``position <id>``).
        :param stop: shared by the calls of a bulk change: once set, retries stop; it also counts
            transient failures, to stop the batch when the API is down.
        """
        request = request_for(self.settings, method, path, json=json, params=params, subject=subject)
        signed_in_again = False
        while True:
            token = self.token(stop)
            answer = self.send(request, token=token, max_retries=max_retries, stop=stop)
            if answer.status == 401 and not signed_in_again and self.tokens.refused(token):
                signed_in_again = True
                self.log.info("JobMojito refused the signed-in token (401); signing in again.")
                continue
            return object_of(
                answer,
                f"{method} /{path}",
                auth_hint=self.tokens.auth_hint(),
                secrets=self.tokens.secrets(token),
            )

    def token(self, stop: Stop | None = None) -> str:
        """A token to send: the static one, a cached sign-in, or a new sign-in."""
        tokens = self.tokens
        token = tokens.current()
        if token is None:
            with tokens.sign_in_lock, tokens.host_lock():
                token = tokens.current()
                if token is None:
                    answer = self.send(tokens.sign_in_request(), token=None, stop=stop)
                    token = tokens.accept_sign_in(answer)
        return token

    def send(
        self,
        request: Request,
        *,
        token: str | None,
        max_retries: int | None = None,
        stop: Stop | None = None,
    ) -> Answer:
        """Send ``request``, retrying transient failures with backoff; return the final answer.

        :raises JobMojitoUnavailableError: when the retries are used up.
        :raises JobMojitoConfigError: when no retry can help (TLS, a request HTTP cannot carry).
        """
        timeout = self.settings.timeout
        retrying = Retrying(self.settings.retry.with_max_retries(max_retries), request.what)
        while True:
            try:
                answer = self.transport.send(request, token=token, timeout=timeout)
            except NoAnswer as exc:
                failure = failure_of(exc, timeout)
            else:
                failure_or_none = failure_of_status(answer.status, answer.headers.get("Retry-After"))
                if failure_or_none is None:
                    if stop is not None:
                        stop.answered()
                    return answer
                failure = failure_or_none
            if stop is not None and not failure.permanent:
                stop.failed(failure)
            seconds = retrying.after(failure)
            log_retry(self.log, retrying, failure, seconds)
            if (stop is not None and stop.is_set()) or self.wait(seconds, stop):
                raise retrying.stopped(
                    failure, (stop.reason if stop else None) or "the bulk change was stopped"
                )
