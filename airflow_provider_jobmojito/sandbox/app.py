"""The sandbox's request pipeline, free of sockets: faults, the request log, routing.

:class:`SandboxApp` turns a :class:`Request` into a :class:`Response` (or ``None`` for a dropped
connection); :mod:`.server` only moves bytes.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import api, control
from .faults import Fault, FaultQueue, fault_response_body
from .messages import Request, Response, json_response
from .ratelimit import SignInLimiter

if TYPE_CHECKING:
    from .state import PositionStore
    from .tokens import TokenAuthority

#: Prefix of the JobMojito API routes (the hook's base URL ends here).
API_PREFIX = "/functions/v1"
#: Prefix of the Supabase auth routes.
AUTH_PREFIX = "/auth/v1"
#: Prefix of the sandbox's own, unauthenticated, unlogged control routes.
CONTROL_PREFIX = "/_sandbox"

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


Route = Callable[["SandboxApp", Request], Response]


class SandboxApp:
    """Everything the sandbox knows, and how it answers a request.

    :param tokens: issues and checks access tokens.
    :param store: the positions.
    :param email: the e-mail the password grant accepts.
    :param password: the password the password grant accepts.
    :param anon_key: when set, ``/auth/v1`` requests need a matching ``apikey`` header.
    :param request_log_limit: entries the request log keeps (``None``: no limit).
    :param sign_ins: the sign-in rate limit and counts; a default (limit on) one when ``None``.
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
    ) -> None:
        self.tokens = tokens
        self.store = store
        self.email = email
        self.password = password
        self.anon_key = anon_key
        self.faults = FaultQueue()
        self.log = RequestLog(request_log_limit)
        self.sign_ins = sign_ins if sign_ins is not None else SignInLimiter()

    def reset(self) -> None:
        """Forget positions, logged requests, faults and sign-in counts, and refill the sign-in
        buckets; credentials, the signing secret and the sign-in limit's settings stay."""
        self.store.clear()
        self.log.clear()
        self.faults.clear()
        self.sign_ins.reset()

    def handle(self, request: Request) -> Response | None:
        """Answer one request; ``None`` means: close the connection without answering.

        Control routes bypass faults and the log. Any other request may meet a fault first; if it
        does not (or the fault is a delay), API routes check the bearer token, then route.
        """
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._dispatch(control.ROUTES, request)
        received = time.time()
        api_route = request.path.startswith((API_PREFIX + "/", AUTH_PREFIX + "/"))
        fault = self.faults.take(request.path, api_route=api_route)
        response: Response | None
        if fault is None or fault.kind == "delay":
            if fault is not None and fault.seconds:
                time.sleep(fault.seconds)
            # Like Supabase's gateway, credentials are checked before the route is even looked up.
            response = api.check_credentials(self, request) or self._dispatch(api.ROUTES, request)
        elif fault.kind == "status":
            response = _fault_response(fault)
        else:
            response = None
        self.log.record(request, received, response.status if response else None, fault)
        return response

    def _dispatch(self, routes: dict[str, dict[str, Route]], request: Request) -> Response:
        try:
            return _route(routes, request)(self, request)
        except Exception:
            # A bug in the sandbox, not a client error: show it, but keep serving.
            traceback.print_exc(file=sys.stderr)
            return json_response(500, {"error": "Internal sandbox error."})


def _fault_response(fault: Fault) -> Response:
    assert fault.status is not None  # parse_fault guarantees it for this kind
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    body = fault_response_body(fault)
    if isinstance(body, str):
        return Response(fault.status, body.encode(), "text/plain; charset=utf-8", headers)
    return json_response(fault.status, body, headers)


def _not_found(_app: SandboxApp, _request: Request) -> Response:
    return json_response(404, {"error": "Not found"})


def _matches(template: str, path: str) -> bool:
    """Whether ``path`` fits ``template``, where a ``{id}`` segment stands for any one segment."""
    wanted, given = template.split("/"), path.split("/")
    return len(wanted) == len(given) and all(w in (g, "{id}") for w, g in zip(wanted, given, strict=True))


def _route(routes: dict[str, dict[str, Route]], request: Request) -> Route:
    methods = routes.get(request.path)
    if methods is None:
        methods = next((m for template, m in routes.items() if _matches(template, request.path)), None)
    if methods is None:
        return _not_found
    handler = methods.get(request.method)
    if handler is not None:
        return handler
    allowed = ", ".join(sorted(methods))

    def method_not_allowed(_app: SandboxApp, _request: Request) -> Response:
        return json_response(405, {"error": "Method not allowed"}, {"Allow": allowed})

    return method_not_allowed
