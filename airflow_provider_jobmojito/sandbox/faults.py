"""Injected faults: error answers, canned answers, slow answers, dropped connections and changes
made just before an answer, consumed in order."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from http import HTTPStatus
from typing import Any, Literal

from .state import ValidationError, canonical_uuid, check_status

FaultKind = Literal["status", "answer", "delay", "drop", "change", "results"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "answer", "delay", "drop", "change", "results")
_MATCH = frozenset({"kind", "count", "path", "query"})
_KEYS: dict[str, frozenset[str]] = {
    "status": _MATCH | {"status", "retry_after", "body"},
    "answer": _MATCH | {"body"},
    "delay": _MATCH | {"seconds"},
    "drop": _MATCH,
    "change": _MATCH | {"position_id", "position_status"},
    "results": _MATCH | {"create_results", "update_results"},
}
#: Longest delay accepted, so a typo cannot hang a test run for hours.
MAX_DELAY_SECONDS = 300.0


@dataclass(frozen=True)
class Fault:
    """One queued fault.

    :param kind: ``status`` (answer ``status`` instead of processing), ``answer`` (answer ``200``
        with ``body`` instead of processing: an API that misbehaves without erring, such as one
        ignoring a filter), ``delay`` (sleep ``seconds``, then process normally), ``drop`` (read
        the request, close the socket without answering) or ``change`` (set ``position_id``'s
        status to ``position_status`` as an admin change does, then process normally: a change
        that lands between two requests, such as between two pages of a listing).
    :param count: requests it still applies to.
    :param path: the exact request path it applies to, or ``None`` for every API and auth route.
    :param query: query parameters the request must carry with these values (others may come
        too), e.g. ``{"offset": "1000"}`` for a listing's second page of 1,000; ``None``: any.
    :param status: the answered status code (``status`` kind).
    :param retry_after: the ``Retry-After`` header value, seconds or an HTTP date (``status`` kind).
    :param body: the answered body: a JSON object/array, or a string sent as ``text/plain``;
        ``None`` answers ``{"error": <reason phrase>}`` (``status`` kind); ``answer`` needs one.
    :param seconds: how long to sleep (``delay`` kind).
    :param position_id: the position to change (``change`` kind).
    :param position_status: its new status (``change`` kind).
    :param create_results: results to create (``results`` kind: like ``change``, the change is
        made just before the request is answered normally; see :mod:`.results`).
    :param update_results: results to update, the least recently updated first (``results`` kind).
    """

    kind: FaultKind
    count: int = 1
    path: str | None = None
    status: int | None = None
    retry_after: str | None = None
    body: Any = None
    seconds: float | None = None
    query: dict[str, str] | None = None
    position_id: str | None = None
    position_status: str | None = None
    create_results: int | None = None
    update_results: int | None = None

    def matches(self, path: str, query: Mapping[str, str], *, api_route: bool) -> bool:
        """Whether a request to ``path`` with ``query`` meets this fault.

        :param api_route: whether ``path`` is an API or auth route; faults without a path filter
            apply only to those.
        """
        if not (self.path == path or (self.path is None and api_route)):
            return False
        return all(query.get(name) == value for name, value in (self.query or {}).items())

    def to_dict(self) -> dict[str, Any]:
        """The fault as the control API shows it."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("count", "Must be an integer of at least 1.")
    return value


def _path(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.startswith("/")):
        raise ValidationError("path", "Must be a path starting with '/'.")
    return value


def _query(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(name, str) and isinstance(item, str | int) and not isinstance(item, bool)
        for name, item in value.items()
    ):
        raise ValidationError("query", "Must be an object of parameter names to strings.")
    return {name: str(item) for name, item in value.items()}


def _status_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    status = spec.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValidationError("status", "Must be an HTTP error status code (400-599).")
    retry_after = spec.get("retry_after")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        retry_after = str(retry_after)
    if retry_after is not None and not isinstance(retry_after, str):
        raise ValidationError("retry_after", "Must be a string (delta-seconds or an HTTP date).")
    body = spec.get("body")
    if body is not None and not isinstance(body, dict | list | str):
        raise ValidationError("body", "Must be a JSON object, an array or a string.")
    return {"status": status, "retry_after": retry_after, "body": body}


def _results_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    options = {}
    for name in ("create_results", "update_results"):
        value = spec.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(name, "Must be an integer of at least 0.")
        options[name] = value
    return options


def parse_fault(spec: object) -> Fault:
    """Validate a fault specification from the control API or :meth:`SandboxServer.add_fault`.

    :param spec: e.g. ``{"kind": "status", "status": 503, "count": 2, "retry_after": "1"}``.
    :raises ValidationError: naming the offending field.
    """
    if not isinstance(spec, Mapping):
        raise ValidationError(None, "A fault must be a JSON object.")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValidationError("kind", f"Must be one of: {', '.join(FAULT_KINDS)}.")
    for key in spec:
        if key not in _KEYS[kind]:
            raise ValidationError(str(key), f"Unknown field for a {kind} fault.")
    options: dict[str, Any] = {}
    if kind == "status":
        options = _status_options(spec)
    elif kind == "answer":
        body = spec.get("body")
        if not isinstance(body, dict | list | str):
            raise ValidationError("body", "Must be a JSON object, an array or a string.")
        options = {"status": 200, "body": body}
    elif kind == "delay":
        seconds = spec.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValidationError("seconds", "Must be a number.")
        if not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise ValidationError("seconds", f"Must be between 0 and {MAX_DELAY_SECONDS:g}.")
        options = {"seconds": float(seconds)}
    elif kind == "change":
        options = {
            "position_id": canonical_uuid(spec.get("position_id"), "position_id"),
            "position_status": check_status(spec.get("position_status"), "position_status"),
        }
    elif kind == "results":
        options = _results_options(spec)
    return Fault(
        kind=kind,
        count=_count(spec.get("count", 1)),
        path=_path(spec.get("path")),
        query=_query(spec.get("query")),
        **options,
    )


def fault_response_body(fault: Fault) -> Any:
    """The body a ``status`` or ``answer`` fault answers with."""
    if fault.body is not None:
        return fault.body
    assert fault.status is not None  # parse_fault guarantees it for this kind
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": f"{phrase} (injected by the JobMojito sandbox)"}


class FaultQueue:
    """Faults in the order they were added; each matching request uses up one unit of the first
    fault that matches it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind the others."""
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str, query: Mapping[str, str], *, api_route: bool) -> Fault | None:
        """Consume one unit of the first fault matching a request, if any.

        :param path: the request path (no query string).
        :param query: the request's query parameters.
        :param api_route: whether ``path`` is an API or auth route; faults without a path filter
            apply only to those.
        :return: the consumed fault (with the count it had), or ``None``.
        """
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(path, query, api_route=api_route):
                    if fault.count <= 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, count=fault.count - 1)
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        """The queued faults, head first."""
        with self._lock:
            return [fault.to_dict() for fault in self._faults]

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()
