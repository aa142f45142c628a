"""How a request reaches the wire: one attempt, no retries, no meaning attached to the answer.

:class:`Request`, :class:`Answer` and :class:`NoAnswer` are what the client layer speaks, whatever
sends them. :class:`RequestsTransport` sends them through a ``requests.Session`` (the hook's
``get_conn()``), so everything requests offers holds: the session's headers, proxies and TLS
settings, ``HTTP(S)_PROXY``/``NO_PROXY`` and ``REQUESTS_CA_BUNDLE``, adapters mounted on it, and
test doubles that patch requests (``responses``, ``requests-mock``, ``mock.patch``).

Two things keep it fast without leaving requests' public API: the session reads the environment
once per origin rather than on every call (:class:`JobMojitoSession`), and its adapter keeps as
many keep-alive connections as there are threads using it (:meth:`RequestsTransport.ensure_pool`).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import HTTPError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The largest answer body read, decoded: every answer of this API is a few hundred bytes, and a
#: small compressed body can decode to gigabytes.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One HTTP request, as the client layer builds it.

    :param method: ``GET`` or ``POST``.
    :param url: the full URL, query string included.
    :param headers: headers on top of the session's (no ``Authorization``: the token is separate).
    :param body: the encoded body, if any.
    :param what: the call, for messages: ``JobMojito POST /job-interview-set-state for position …``.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = field(default=None, repr=False)
    what: str = ""

    @classmethod
    def post_json(
        cls, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None, what: str
    ) -> Request:
        """A POST with ``payload`` as its JSON body."""
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
        return cls("POST", url, {**(headers or {}), "Content-Type": "application/json"}, body, what)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer.

    :param status: the status code.
    :param headers: the headers, looked up without regard to case.
    :param body: the body, decoded from any content encoding.
    """

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except RecursionError:  # nested deeper than the parser goes: not JSON this API sends
            raise ValueError("JSON nested too deeply") from None


class NoAnswer(Exception):
    """No usable answer came: the connection failed, or the timeout passed first.

    :param reason: what happened, short, e.g. ``ConnectionError: ... Connection refused``.
    :param timed_out: whether the timeout passed (rather than the connection failing).
    :param permanent: whether retrying cannot help (a certificate that does not verify, a
        request that cannot be built, an answer too large to read).
    :param too_slow: whether an answer came but did not arrive in full in time.
    """

    def __init__(
        self, reason: str, *, timed_out: bool, permanent: bool = False, too_slow: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out
        self.permanent = permanent
        self.too_slow = too_slow


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
        deadline = time.monotonic() + 2 * timeout
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
            raise NoAnswer(_describe(cause), timed_out=False, permanent=_tls_is_permanent(cause)) from exc
        except requests.Timeout as exc:
            raise NoAnswer(_describe(_cause(exc)), timed_out=True) from exc
        except requests.ConnectionError as exc:
            raise NoAnswer(_describe(_cause(exc)), timed_out=False) from exc
        except (ValueError, UnicodeError) as exc:
            raise _unsendable(exc) from None
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
        raise NoAnswer(_describe(exc), timed_out=isinstance(exc, ReadTimeoutError | TimeoutError)) from exc
    # Read to the end: the connection goes back to the pool for the next call.
    raw.release_conn()
    return body.value()


class AnswerBody:
    """An answer's decoded body, collected within :data:`MAX_ANSWER_BYTES` and a deadline.

    Socket timeouts bound each read, not the whole answer: a server that drips a byte before each
    timeout would hold the call for ever, hence the deadline (twice the timeout, from sending).

    :param status: the answer's status, for messages.
    :param deadline: the ``time.monotonic()`` by which the body must be complete.
    :param timeout: the call's timeout, for messages.
    :raises NoAnswer: from :meth:`add`, when the body is too large or too slow.
    """

    def __init__(self, status: int, *, deadline: float, timeout: float) -> None:
        self.status = status
        self.deadline = deadline
        self.timeout = timeout
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_ANSWER_BYTES:
            raise NoAnswer(
                f"the answer ({self.status}) is over {MAX_ANSWER_BYTES // 2**20} MiB once decoded; "
                "this API's answers are a few hundred bytes",
                timed_out=False,
                permanent=True,
            )
        self._chunks.append(chunk)
        if time.monotonic() > self.deadline:
            raise NoAnswer(
                f"the answer ({self.status}) was still arriving {2 * self.timeout:g} s after it was "
                "sent (twice the timeout)",
                timed_out=False,
                too_slow=True,
            )

    def value(self) -> bytes:
        return b"".join(self._chunks)


def _cause(exc: requests.RequestException) -> BaseException:
    """What went wrong underneath requests' wrapper (urllib3's MaxRetryError wraps the cause)."""
    reason: Any = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return reason if isinstance(reason, BaseException) else exc


#: TLS failures where the peer cut the handshake short: a restarting server or load balancer,
#: which a retry may get past. Any other TLS failure (an untrusted or mismatched certificate,
#: TLS spoken to a plain-HTTP port) stays the same however often it is retried.
_TRANSIENT_TLS_FAILURES = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ConnectionError)


def _tls_is_permanent(exc: BaseException) -> bool:
    """Whether a TLS failure is one no retry can help (see ``_TRANSIENT_TLS_FAILURES``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, _TRANSIENT_TLS_FAILURES):
            return False
        # urllib3 and requests wrap the ssl module's error in args, reason or the chain.
        linked = (*error.args, getattr(error, "reason", None), error.__cause__, error.__context__)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return "EOF occurred" not in str(exc)


def _unsendable(exc: BaseException) -> NoAnswer:
    """A request that cannot be built: a header value with a line break, a URL requests cannot
    use. The error's own text could quote the value, which may be the token: only its type is
    kept, and the chain is cut (``from None``) so no traceback shows it either."""
    return NoAnswer(
        f"{type(exc).__name__}: the URL or a header holds something HTTP cannot carry (value not shown)",
        timed_out=False,
        permanent=True,
    )


def _describe(exc: BaseException) -> str:
    """E.g. ``NewConnectionError: HTTPConnection(host='127.0.0.1', port=9): ... refused``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
