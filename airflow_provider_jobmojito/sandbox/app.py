"""The sandbox's request pipeline, free of sockets: faults, the request log, routing.

:class:`SandboxApp` turns a :class:`Request` into a :class:`Response` (or ``None`` for a dropped
connection); :mod:`.server` only moves bytes. The route handlers (:mod:`.api`, :mod:`.control`)
see only the :class:`~.context.SandboxContext` part of it, so they need nothing from here.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import TYPE_CHECKING

from . import api, control
from .context import SandboxContext
from .faults import fault_response_body
from .messages import Response, json_response
from .results import ResultChange
from .state import UnknownPositionError

if TYPE_CHECKING:
    from .context import Route
    from .faults import Fault
    from .messages import Request

#: Prefix of the JobMojito API routes (the hook's base URL ends here).
API_PREFIX = "/functions/v1"
#: Prefix of the Supabase auth routes.
AUTH_PREFIX = "/auth/v1"
#: Prefix of the sandbox's own, unauthenticated, unlogged control routes.
CONTROL_PREFIX = "/_sandbox"


class SandboxApp(SandboxContext):
    """The sandbox's state (see :class:`SandboxContext`, same parameters), and how it answers a
    request."""

    def handle(self, request: Request) -> Response | None:
        """Answer one request; ``None`` means: close the connection without answering.

        Control routes bypass faults and the log. Any other request may meet a fault first; if it
        does not (or the fault is a delay), API routes check the bearer token, then route.
        """
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._dispatch(control.ROUTES, request)
        received = time.time()
        api_route = request.path.startswith((API_PREFIX + "/", AUTH_PREFIX + "/"))
        fault = self.faults.take(request.path, request.query, api_route=api_route)
        response: Response | None
        if fault is None or fault.kind in ("delay", "change", "results"):
            if fault is not None and fault.seconds:
                time.sleep(fault.seconds)
            if fault is not None and fault.kind == "change":
                self._change(fault)
            if fault is not None and fault.kind == "results":
                self.results.apply(
                    ResultChange(create=fault.create_results or 0, update=fault.update_results or 0)
                )
            # Like Supabase's gateway, credentials are checked before the route is even looked up.
            response = api.check_credentials(self, request) or self._dispatch(api.ROUTES, request)
        elif fault.kind in ("status", "answer"):
            response = _fault_response(fault)
        else:
            response = None
        self.log.record(request, received, response.status if response else None, fault)
        return response

    def _change(self, fault: Fault) -> None:
        """A ``change`` fault: the admin change it names, made before the request is answered."""
        # parse_fault guarantees both for this kind.
        assert fault.position_id is not None
        assert fault.position_status is not None
        try:
            self.store.admin_set_status(fault.position_id, fault.position_status)
        except UnknownPositionError:
            # Gone since the fault was queued: the request is still answered, and the test sees why.
            sys.stderr.write(f"JobMojito sandbox: change fault for unknown position {fault.position_id}\n")

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


def _not_found(_app: SandboxContext, _request: Request) -> Response:
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

    def method_not_allowed(_app: SandboxContext, _request: Request) -> Response:
        return json_response(405, {"error": "Method not allowed"}, {"Allow": allowed})

    return method_not_allowed
