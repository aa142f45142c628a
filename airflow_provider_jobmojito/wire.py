"""What crosses the cut between the client's decisions and the I/O: requests, answers, transports.

:class:`Request`, :class:`Answer` and :class:`NoAnswer` are what the plans of
:mod:`~airflow_provider_jobmojito.plan` speak, whatever sends them. A transport sends one
:class:`Request` once and returns its :class:`Answer`, or raises :class:`NoAnswer`; it never
retries and attaches no meaning to a status. :class:`SyncTransport` and :class:`AsyncTransport`
are the two interfaces (as httpx's ``BaseTransport`` and ``AsyncBaseTransport``): requests
implements the first (:mod:`~airflow_provider_jobmojito.transport`), httpx the second
(:mod:`~airflow_provider_jobmojito.transport_async`). Both read bodies through
:class:`AnswerBody` and describe failures with :func:`describe`, :func:`tls_is_permanent` and
:func:`unsendable`, so that the same failure reads the same whichever side met it.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The largest answer body read, decoded: every answer of this API is a few hundred bytes, and a
#: small compressed body can decode to gigabytes.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


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
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold the anon key
    body: bytes | None = field(default=None, repr=False)
    what: str = ""

    @classmethod
    def with_json(
        cls,
        method: str,
        url: str,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        what: str,
    ) -> Request:
        """A request with ``payload`` as its JSON body (any method: POST, PUT, PATCH...)."""
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
        return cls(method, url, {**(headers or {}), "Content-Type": "application/json"}, body, what)

    @classmethod
    def post_json(
        cls, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None, what: str
    ) -> Request:
        """A POST with ``payload`` as its JSON body."""
        return cls.with_json("POST", url, payload, headers=headers, what=what)


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

    def date(self) -> float | None:
        """When the server answered, by its own clock: the ``Date`` header in POSIX seconds.

        HTTP dates are whole seconds (``Sun, 06 Dec 2026 06:08:07 GMT``): the server's time was
        this value or up to a second later. ``None`` when the header is missing or not a date.
        """
        return http_date(self.headers.get("Date"))


def http_date(value: object) -> float | None:
    """An HTTP date (``Sun, 06 Dec 2026 06:08:07 GMT``) in POSIX seconds; ``None`` when ``value``
    is not one.

    :param value: a ``Date`` header's value, or ``None``.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, its source unknown
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


class SyncTransport(Protocol):
    """Sends one request once, blocking (the worker's side)."""

    def send(self, request: Request, *, token: str | None, timeout: float) -> Answer:
        """Send ``request`` with ``token`` as the bearer; :class:`NoAnswer` when no answer came.

        :param timeout: seconds to connect, and seconds to wait for each read.
        """
        ...


class AsyncTransport(Protocol):
    """Sends one request once, on an event loop (the triggerer's side)."""

    async def send(self, request: Request, *, token: str | None, timeout: float) -> Answer:
        """Send ``request`` with ``token`` as the bearer; :class:`NoAnswer` when no answer came.

        :param timeout: seconds to connect, and seconds to wait for each read.
        """
        ...

    async def aclose(self) -> None:
        """Close the transport's connections."""
        ...


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


def deadline_for(timeout: float) -> float:
    """The ``time.monotonic()`` by which a whole answer must have arrived: twice the timeout."""
    return time.monotonic() + 2 * timeout


#: TLS failures where the peer cut the handshake short: a restarting server or load balancer,
#: which a retry may get past. Any other TLS failure (an untrusted or mismatched certificate,
#: TLS spoken to a plain-HTTP port) stays the same however often it is retried.
TRANSIENT_TLS_FAILURES = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ConnectionError)


def tls_is_permanent(exc: BaseException) -> bool:
    """Whether a TLS failure is one no retry can help (see :data:`TRANSIENT_TLS_FAILURES`)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, TRANSIENT_TLS_FAILURES):
            return False
        # urllib3, requests and httpx wrap the ssl module's error in args, reason or the chain.
        linked = (*error.args, getattr(error, "reason", None), error.__cause__, error.__context__)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return "EOF occurred" not in str(exc)


def unsendable(exc: BaseException) -> NoAnswer:
    """A request that cannot be built: a header value with a line break, a URL the HTTP library
    cannot use. The error's own text could quote the value, which may be the token: only its
    type is kept; raise it ``from None`` so that no traceback shows the value either."""
    return NoAnswer(
        f"{type(exc).__name__}: the URL or a header holds something HTTP cannot carry (value not shown)",
        timed_out=False,
        permanent=True,
    )


def describe(exc: BaseException) -> str:
    """E.g. ``NewConnectionError: HTTPConnection(host='127.0.0.1', port=9): ... refused``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
