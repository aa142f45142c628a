"""The async API client, for triggers: httpx on the event loop, with the sync client's rules.

What it shares with :mod:`~airflow_provider_jobmojito.client`, unchanged: the request building
(:func:`~airflow_provider_jobmojito.client.request_for`), the retry decisions
(:class:`~airflow_provider_jobmojito.retry.Retrying`), the token provider
(:class:`~airflow_provider_jobmojito.auth.TokenProvider`), the status-to-exception mapping
(:func:`~airflow_provider_jobmojito.answers.object_of`) and the answer limits of the transport
(:data:`~airflow_provider_jobmojito.transport.MAX_ANSWER_BYTES`, a deadline of twice the timeout).
Only sending and waiting are its own. httpx comes with every Airflow line.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_jobmojito.answers import object_of
from airflow_provider_jobmojito.client import failure_of, log_retry, request_for
from airflow_provider_jobmojito.retry import Retrying, failure_of_status
from airflow_provider_jobmojito.transport import (
    Answer,
    AnswerBody,
    NoAnswer,
    _describe,
    _tls_is_permanent,
    _unsendable,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from airflow_provider_jobmojito.auth import TokenProvider
    from airflow_provider_jobmojito.settings import HookSettings
    from airflow_provider_jobmojito.transport import Request


class HttpxTransport:
    """Send :class:`~airflow_provider_jobmojito.transport.Request` s with an ``httpx.AsyncClient``.

    :param client: the httpx client (shared by the triggers of one connection in one event loop).
    :param headers: headers on every request (``User-Agent``, ``Accept``).
    """

    def __init__(self, client: httpx.AsyncClient, headers: Mapping[str, str]) -> None:
        self.client = client
        self.headers = dict(headers)

    async def send(self, request: Request, *, token: str | None, timeout: float) -> Answer:
        """Send ``request`` once; the async twin of ``RequestsTransport.send``.

        :raises NoAnswer: when the connection failed, timed out, or the answer was too large or slow.
        """
        headers = {**self.headers, **request.headers}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + 2 * timeout
        try:
            async with self.client.stream(
                request.method,
                request.url,
                headers=headers,
                content=request.body,
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
            ) as response:
                body = await _read_capped(response, deadline=deadline, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise NoAnswer(_describe(exc), timed_out=True) from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise _unsendable(exc) from None
        except httpx.ConnectError as exc:
            tls = isinstance(exc.__cause__ or exc.__context__, ssl.SSLError) or "SSL" in str(exc)
            permanent = tls and _tls_is_permanent(exc)
            raise NoAnswer(_describe(exc), timed_out=False, permanent=permanent) from exc
        except httpx.RequestError as exc:  # a cut connection, a protocol or decoding error mid-answer
            raise NoAnswer(_describe(exc), timed_out=False) from exc
        except (ValueError, UnicodeError) as exc:  # a header value HTTP cannot carry
            raise _unsendable(exc) from None
        return Answer(response.status_code, response.headers, body)


async def _read_capped(response: httpx.Response, *, deadline: float, timeout: float) -> bytes:
    body = AnswerBody(response.status_code, deadline=deadline, timeout=timeout)
    async for chunk in response.aiter_bytes():
        body.add(chunk)
    return body.value()


class AsyncJobMojitoClient:
    """Calls the JobMojito API from an event loop: tokens, retries with backoff, typed errors.

    Never blocks the loop: what may block (registering a secret with Airflow's masker, which on
    Airflow 3 waits for the supervisor) runs in a worker thread.

    :param settings: the connection's settings.
    :param tokens: gives the bearer token; sign-ins are sent by this client.
    :param transport: sends one attempt.
    :param log: where to log retries.
    """

    def __init__(
        self, settings: HookSettings, tokens: TokenProvider, transport: HttpxTransport, log: Any
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.transport = transport
        self.log = log
        #: How retries wait; tests replace it to assert the backoff without sleeping.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._sign_in_lock = asyncio.Lock()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """Call the API; return its JSON object or raise the typed error its answer means."""
        request = request_for(self.settings, method, path, params=params, subject=subject)
        signed_in_again = False
        while True:
            token = await self.token()
            answer = await self.send(request, token=token, max_retries=max_retries)
            if (
                answer.status == 401
                and not signed_in_again
                and await asyncio.to_thread(self.tokens.refused, token)
            ):
                signed_in_again = True
                self.log.info("JobMojito refused the signed-in token (401); signing in again.")
                continue
            return object_of(
                answer,
                f"{method} /{path}",
                auth_hint=self.tokens.auth_hint(),
                secrets=self.tokens.secrets(token),
            )

    async def token(self) -> str:
        """A token to send: the static one, a cached sign-in, or a new sign-in (once per loop).

        The token provider reads the host's token cache and registers tokens with the secret
        masker, either of which may block: it runs in a worker thread.
        """
        token = await asyncio.to_thread(self.tokens.current)
        if token is None:
            async with self._sign_in_lock:
                token = await asyncio.to_thread(self.tokens.current)
                if token is None:
                    answer = await self.send(self.tokens.sign_in_request(), token=None)
                    token = await asyncio.to_thread(self.tokens.accept_sign_in, answer)
        return token

    async def send(self, request: Request, *, token: str | None, max_retries: int | None = None) -> Answer:
        """Send ``request``, retrying transient failures with backoff; return the final answer."""
        timeout = self.settings.timeout
        retrying = Retrying(self.settings.retry.with_max_retries(max_retries), request.what)
        while True:
            try:
                answer = await self.transport.send(request, token=token, timeout=timeout)
            except NoAnswer as exc:
                failure = failure_of(exc, timeout)
            else:
                failure_or_none = failure_of_status(answer.status, answer.headers.get("Retry-After"))
                if failure_or_none is None:
                    return answer
                failure = failure_or_none
            seconds = retrying.after(failure)
            log_retry(self.log, retrying, failure, seconds)
            await self.sleep(seconds)
