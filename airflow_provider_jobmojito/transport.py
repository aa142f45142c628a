"""The synchronous transport: one attempt through requests, no retries, no meaning attached.

:class:`RequestsTransport` implements :class:`~airflow_provider_jobmojito.wire.SyncTransport`: it
sends the requests the client's plans build through a ``requests.Session`` (the hook's
``get_conn()``), so everything requests offers holds: the session's headers, proxies and TLS
settings, ``HTTP(S)_PROXY``/``NO_PROXY`` and ``REQUESTS_CA_BUNDLE``, adapters mounted on it, and
test doubles that patch requests (``responses``, ``requests-mock``, ``mock.patch``).

Two things keep it fast without leaving requests' public API: the session reads the environment
once per origin rather than on every call (:class:`JobMojitoSession`), and its adapter keeps as
many keep-alive connections as there are threads using it (:meth:`RequestsTransport.ensure_pool`).
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import HTTPError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse

from airflow_provider_jobmojito.wire import (
    MAX_ANSWER_BYTES,
    Answer,
    AnswerBody,
    NoAnswer,
    Request,
    deadline_for,
    describe,
    tls_is_permanent,
    unsendable,
)

_CHUNK = 64 * 1024


class BearerAuth(AuthBase):
    """Puts the access token in the ``Authorization`` header (``None``: no header).

    Given on every request, it also keeps requests from putting ``~/.netrc`` credentials there.
    """

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class JobMojitoSession(requests.Session):
    """A ``requests.Session`` that reads proxy and CA settings from the environment once per origin.

    ``Session.request`` reads them on every call (most of its own CPU time). They are read again
    when anything they depend on changes: the session's ``trust_env``, ``proxies``, ``verify`` or
    ``cert``, or a request that passes its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], Any] = {}

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        parts = urlsplit(url if isinstance(url, str) else "")
        try:
            key = (
                parts.scheme,
                parts.netloc,
                self.trust_env,
                tuple(sorted((proxies or {}).items())),
                tuple(sorted(self.proxies.items())),
                stream,
                verify,
                cert,
                self.verify,
                self.cert,
            )
            settings = self._environment.get(key)
        except TypeError:  # an unhashable setting (cert as a list): read it every time
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        return dict(settings)


class PooledAdapter(HTTPAdapter):
    """requests' ``HTTPAdapter`` without urllib3 retries (the client's own honour ``Retry-After``).

    :param pool_maxsize: keep-alive connections kept per host.
    """

    def __init__(self, pool_maxsize: int = DEFAULT_POOLSIZE) -> None:
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)
        self.pool_maxsize = pool_maxsize


class RequestsTransport:
    """Send :class:`Request` s through a ``requests.Session``, once each.

    The session's connections are never shared across a fork: a process that did not open them
    gets new ones (a forked child reading answers meant for its parent is what happens otherwise).

    :param session: the session to send through.
    """

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def send(self, request: Request, *, token: str | None, timeout: float) -> Answer:
        """Send ``request`` once, with ``token`` as the bearer.

        :param timeout: seconds to connect, and seconds to wait for each read.
        :raises NoAnswer: when the connection failed, timed out, or the answer was too large.
        """
        if self._pid != os.getpid():
            self._after_fork()
        deadline = deadline_for(timeout)
        try:
            response = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
                auth=BearerAuth(token),
                stream=True,
            )
        except requests.exceptions.SSLError as exc:
            cause = _cause(exc)
            raise NoAnswer(describe(cause), timed_out=False, permanent=tls_is_permanent(cause)) from exc
        except requests.Timeout as exc:
            raise NoAnswer(describe(_cause(exc)), timed_out=True) from exc
        except requests.ConnectionError as exc:
            raise NoAnswer(describe(_cause(exc)), timed_out=False) from exc
        except (ValueError, UnicodeError) as exc:
            raise unsendable(exc) from None
        try:
            body = _read_capped(response, deadline=deadline, timeout=timeout)
        finally:
            response.close()
        return Answer(response.status_code, response.headers, body)

    def ensure_pool(self, url: str, connections: int) -> None:
        """Keep up to ``connections`` connections to ``url``'s host alive, for as many threads.

        A pool smaller than the number of threads using it closes a connection after nearly every
        call. Only the transport's own adapter is replaced, by a larger one mounted over it; an
        adapter the user mounted is left alone. The old adapter's connections close once the
        calls using them are done with it.
        """
        with self._lock:
            adapter = self.session.get_adapter(url)
            if type(adapter) is PooledAdapter and adapter.pool_maxsize < connections:
                prefix = f"{urlsplit(url).scheme}://"
                self.session.mount(prefix, PooledAdapter(pool_maxsize=connections))

    def _after_fork(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # Closing the inherited sockets here closes this process's copies only: the parent's
            # connections stay open, and neither process reads the other's answers again.
            self.session.close()
            self._pid = os.getpid()


def _read_capped(response: requests.Response, *, deadline: float, timeout: float) -> bytes:
    """The decoded body, read as it arrives, within the limits of :class:`AnswerBody`.

    Each ``read1`` returns what one read got, so the deadline is checked as the body arrives.
    """
    raw = response.raw
    if not isinstance(raw, BaseHTTPResponse):
        # A canned answer from a test double: its body is already in memory.
        return response.content
    body = AnswerBody(response.status_code, deadline=deadline, timeout=timeout)
    try:
        while chunk := raw.read1(_CHUNK, decode_content=True):
            body.add(chunk)
    except (HTTPError, OSError) as exc:  # a read timeout, a cut connection, a bad encoding mid-body
        raise NoAnswer(describe(exc), timed_out=isinstance(exc, ReadTimeoutError | TimeoutError)) from exc
    # Read to the end: the connection goes back to the pool for the next call.
    raw.release_conn()
    return body.value()


def _cause(exc: requests.RequestException) -> BaseException:
    """What went wrong underneath requests' wrapper (urllib3's MaxRetryError wraps the cause)."""
    reason: Any = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return reason if isinstance(reason, BaseException) else exc


#: The wire's names, importable from here as in 1.0.0.
__all__ = [
    "MAX_ANSWER_BYTES",
    "Answer",
    "AnswerBody",
    "BearerAuth",
    "JobMojitoSession",
    "NoAnswer",
    "PooledAdapter",
    "Request",
    "RequestsTransport",
]
