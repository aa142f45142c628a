"""What the route handlers see of the sandbox: its state, and the type of a handler.

Below :mod:`.api` and :mod:`.control` (the handlers) and :mod:`.app` (which routes requests to
them), so that the imports run one way: ``app`` -> ``api``/``control`` -> ``context``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .faults import FaultQueue
from .messages import Request, Response
from .ratelimit import SignInLimiter
from .results import ResultStore

if TYPE_CHECKING:
    from .faults import Fault
    from .state import Clock, PositionStore
    from .tokens import TokenAuthority

_REDACTED = "<redacted>"
#: Body fields that are secrets; the request log masks them.
_SECRET_BODY_FIELDS = frozenset({"password", "refresh_token", "access_token", "embed_signing_key"})


def _redacted_headers(headers: dict[str, str]) -> dict[str, str]:
    redacted: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower == "authorization":
            scheme = value.split(" ", 1)[0]
            redacted[name] = f"Bearer {_REDACTED}" if scheme.lower() == "bearer" else _REDACTED
        elif lower in ("apikey", "cookie"):
            redacted[name] = _REDACTED
        else:
            redacted[name] = value
    return redacted


def _logged_json(request: Request) -> Any:
    try:
        payload = request.json()
    except ValueError:
        return None
    if isinstance(payload, dict):
        return {k: (_REDACTED if k in _SECRET_BODY_FIELDS else v) for k, v in payload.items()}
    return payload


class RequestLog:
    """Every request outside the control API (so also a mistyped path, which helps to debug a wrong
    base URL) and how it was answered, secrets masked.

    :param limit: entries kept; the oldest go first. ``None`` keeps everything.
    """

    def __init__(self, limit: int | None) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)

    def record(self, request: Request, at: float, status: int | None, fault: Fault | None) -> None:
        """Append one entry (before the response is written, so a client reading the log right
        after its call always finds it)."""
        entry = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": _redacted_headers(request.headers),
            "json": _logged_json(request),
            "status": status,
            "at": at,
            "fault": fault.kind if fault is not None else None,
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, oldest first (shallow copies)."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


class SandboxContext:
    """Everything the sandbox knows: what a route handler reads and changes.

    :param tokens: issues and checks access tokens.
    :param store: the positions.
    :param email: the e-mail the password grant accepts.
    :param password: the password the password grant accepts.
    :param anon_key: when set, ``/auth/v1`` requests need a matching ``apikey`` header.
    :param request_log_limit: entries the request log keeps (``None``: no limit).
    :param sign_ins: the sign-in rate limit and counts; a default (limit on) one when ``None``.
    :param clock: seconds since the epoch: what the answers' ``Date`` header says (the store's
        timestamps read the store's clock; :class:`SandboxServer` gives both the same one).
    """

    def __init__(
        self,
        tokens: TokenAuthority,
        store: PositionStore,
        *,
        email: str,
        password: str,
        anon_key: str | None = None,
        request_log_limit: int | None = 100_000,
        sign_ins: SignInLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.tokens = tokens
        self.store = store
        self.email = email
        self.password = password
        self.anon_key = anon_key
        self.faults = FaultQueue()
        self.log = RequestLog(request_log_limit)
        self.sign_ins = sign_ins if sign_ins is not None else SignInLimiter()
        self.clock: Clock = clock if clock is not None else time.time
        #: The interview results (:mod:`.results`), stamped from the same clock.
        self.results = ResultStore(self.clock)

    def reset(self) -> None:
        """Forget positions, results, logged requests, faults, sign-in counts and revoked sessions, and refill
        the sign-in buckets; credentials, the signing secret and the sign-in limit's settings stay."""
        self.tokens.forget_sessions()
        self.store.clear()
        self.results.clear()
        self.log.clear()
        self.faults.clear()
        self.sign_ins.reset()


#: A route handler: the sandbox's state and a request in, the response out.
Route = Callable[[SandboxContext, Request], Response]
