"""Requests and responses as the sandbox's routes see them, independent of the socket layer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_UNPARSED = object()
_INVALID = object()


@dataclass
class Request:
    """One parsed HTTP request.

    :param method: upper-case method.
    :param target: the request target as sent (path and query string).
    :param headers: header name (as sent) to value; a repeated header keeps its last value.
    :param body: the raw body (empty when none was sent).
    :param client: the client's IP address (empty when unknown).
    """

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    client: str = ""
    path: str = field(init=False)
    query: dict[str, str] = field(init=False)
    _lower_headers: dict[str, str] = field(init=False, repr=False)
    _json: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path or "/"
        # A repeated parameter keeps its first value, as the API's own parsers do.
        self.query = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            self.query.setdefault(name, value)
        self._lower_headers = {name.lower(): value for name, value in self.headers.items()}
        self._json = _UNPARSED

    def header(self, name: str) -> str | None:
        """A header's value, by case-insensitive name."""
        return self._lower_headers.get(name.lower())

    def json(self) -> Any:
        """The body decoded as JSON (decoded once: the route and the request log both read it).

        Anything a strict JSON parser (such as the ``JSON.parse`` behind the real API) refuses is
        refused here too: invalid UTF-8, ``NaN``/``Infinity``, an integer too long to convert, and
        nesting too deep to decode (which would otherwise escape as a ``RecursionError``).

        :raises ValueError: when the body is empty or not JSON.
        """
        if self._json is _UNPARSED:
            self._json = _decode_json(self.body)
        if self._json is _INVALID:
            raise ValueError("the body is empty or not JSON")
        return self._json


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_json(body: bytes) -> Any:
    if not body:
        return _INVALID
    try:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; so is the error for an integer
        # with more digits than int() converts.
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return _INVALID


@dataclass
class Response:
    """An answer to send.

    :param status: HTTP status code.
    :param body: encoded body.
    :param content_type: its media type.
    :param headers: extra headers.
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response.

    :param status: HTTP status code.
    :param payload: anything :func:`json.dumps` accepts.
    :param headers: extra headers.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, "application/json", dict(headers or {}))
