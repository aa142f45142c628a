"""Hook settings: keyword arguments merged over connection extras, merged over defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_jobmojito import DEFAULT_API_URL
from airflow_provider_jobmojito.exceptions import JobMojitoConfigError
from airflow_provider_jobmojito.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_EMBED_BASE_URL = "https://try.interviewmojito.com/embed"

#: Older Airflow forms stored extras under this prefix; both spellings are read.
_LEGACY_EXTRA_PREFIX = "extra__jobmojito__"


#: The longest wait any setting may ask for: a day is plenty for one HTTP call or one backoff,
#: and larger numbers overflow the socket and thread APIs they end up in.
MAX_SECONDS = 24 * 3600
#: The most retries of one call: with backoff doubling to backoff_max, more only wait longer.
MAX_RETRIES = 100


def _positive_number(name: str, value: Any) -> float:
    number = _number(name, value)
    if number <= 0:
        raise JobMojitoConfigError(
            f"{name} must be a number of seconds above 0 and at most {MAX_SECONDS}; got {value!r}."
        )
    return number


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not 0 <= number <= MAX_SECONDS:
        raise JobMojitoConfigError(
            f"{name} must be a number of seconds from 0 to {MAX_SECONDS} (a day); got {value!r}."
        )
    return number


def _count(name: str, value: Any) -> int:
    if isinstance(value, str):
        value = value.strip()
    whole = isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())
    # len() first: int() of a string of thousands of digits is refused by Python itself.
    if isinstance(value, bool) or not whole or len(str(value)) > 4 or not 0 <= int(value) <= MAX_RETRIES:
        raise JobMojitoConfigError(f"{name} must be a whole number from 0 to {MAX_RETRIES}; got {value!r}.")
    return int(value)


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise JobMojitoConfigError(f"{name} must be an http(s) URL; got {value!r}.")
    # Copied from a form or a secrets manager, a URL often carries a space or a newline around it.
    value = str(value).strip()
    if any(character.isspace() or not character.isprintable() for character in value):
        raise JobMojitoConfigError(
            f"{name} must be an http(s) URL without spaces or line breaks; got {value!r}."
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JobMojitoConfigError(f"{name} must be an http(s) URL; got {value!r}.")
    try:
        port = parts.port
    except ValueError:  # urllib refuses a port that is not a number, or above 65535
        port = 0
    if port == 0:
        raise JobMojitoConfigError(f"{name} has a port that is not a number from 1 to 65535; got {value!r}.")
    return str(value).rstrip("/")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise JobMojitoConfigError(f"{name} must be a string.")
    return value


def _header_secret(name: str, value: Any) -> str:
    """A secret sent in an HTTP header, without the whitespace a copy from a file or a secrets
    manager often adds; anything else a header cannot carry is refused without showing it."""
    text = _text(name, value).strip()
    if not text.isascii() or not text.isprintable() or " " in text:
        # The value is a secret: the message must not show it, even in part.
        raise JobMojitoConfigError(
            f"{name} holds a character an HTTP header cannot carry (only visible ASCII is allowed: "
            "no spaces, line breaks or typographic quotes); the value is not shown."
        )
    return text


#: Every extra the hook reads, with its parser and default (None: derived or unset).
EXTRAS: dict[str, tuple[Callable[[str, Any], Any], Any]] = {
    "timeout": (_positive_number, 30.0),
    "max_retries": (_count, 5),
    "backoff_factor": (_number, 0.5),
    "backoff_max": (_number, 30.0),
    "supabase_url": (_url, None),
    "supabase_anon_key": (_header_secret, None),
    "embed_base_url": (_url, DEFAULT_EMBED_BASE_URL),
}


@dataclass(frozen=True)
class HookSettings:
    """Everything the hook needs from its connection, validated.

    :param base_url: the API base URL, without a trailing slash.
    :param timeout: seconds for each attempt of an HTTP call.
    :param retry: the retry policy for transient failures.
    :param supabase_url: where sign-in mode signs in.
    :param supabase_anon_key: sent as the ``apikey`` header when set.
    :param embed_base_url: the base of iframe URLs built from an ``embed_id``.
    :param login: the sign-in e-mail; empty for a static token.
    :param password: the static token, or the sign-in password.
    """

    base_url: str
    timeout: float
    retry: RetryPolicy
    supabase_url: str
    supabase_anon_key: str | None = field(repr=False)
    embed_base_url: str
    login: str
    password: str = field(repr=False)

    @property
    def signs_in(self) -> bool:
        """Whether the hook signs in with e-mail and password rather than sending a static token."""
        return bool(self.login)

    @classmethod
    def resolve(
        cls,
        *,
        host: str | None,
        port: int | None = None,
        schema: str | None = None,
        login: str | None,
        password: str | None,
        extras: Mapping[str, Any],
        overrides: Mapping[str, Any],
    ) -> HookSettings:
        """Merge hook arguments over connection extras over defaults; raise on anything unknown.

        :param host: the connection's host: a full base URL, or a bare host name (then https, with
            ``port`` and ``schema`` as port and path, as a URI-form connection gives them).
        :param extras: the connection's extras (URI connections give strings; they are cast).
        :param overrides: the hook's keyword arguments; ``None`` values fall through.
        """
        values = _known_extras(extras)
        values.update({name: value for name, value in overrides.items() if value is not None})
        parsed = {
            name: default if values.get(name) is None else parse(name, values[name])
            for name, (parse, default) in EXTRAS.items()
        }
        base_url = _base_url(host, port, schema)
        return cls(
            base_url=base_url,
            timeout=parsed["timeout"],
            retry=RetryPolicy(parsed["max_retries"], parsed["backoff_factor"], parsed["backoff_max"]),
            supabase_url=parsed["supabase_url"] or _origin(base_url),
            supabase_anon_key=parsed["supabase_anon_key"],
            embed_base_url=parsed["embed_base_url"],
            login=login or "",
            password=_password(login, password),
        )


def _password(login: str | None, password: str | None) -> str:
    if login or not password:
        # A sign-in password goes in a JSON body: kept exactly as given, spaces and all.
        return password or ""
    # Without a login the password is the bearer token, sent in a header.
    return _header_secret("The access token (the connection's password)", password)


def _known_extras(extras: Mapping[str, Any]) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for raw_name, value in extras.items():
        name = raw_name.removeprefix(_LEGACY_EXTRA_PREFIX)
        if name not in EXTRAS:
            raise JobMojitoConfigError(
                f"Unknown connection extra {raw_name!r}. Known extras: {', '.join(EXTRAS)}."
            )
        # Form fields left empty arrive as "" or null: they mean "use the default".
        if value not in ("", None):
            known[name] = value
    return known


def _base_url(host: str | None, port: int | None, schema: str | None) -> str:
    host = host.strip() if isinstance(host, str) else host
    if not host:
        return DEFAULT_API_URL
    if "://" not in host:
        netloc = f"{host}:{port}" if port else host
        host = f"https://{netloc}/{schema or ''}"
    url = _url("host", host)
    if port:
        # A full URL in host with the port in its own field, as a JSON connection may give it.
        parts = urlsplit(url)
        if parts.port is None:
            url = _url("port", parts._replace(netloc=f"{parts.netloc}:{port}").geturl())
        elif parts.port != int(port):
            raise JobMojitoConfigError(
                f"The connection's host {host!r} names port {parts.port}, but its port field says "
                f"{port}: leave the port field empty, or make them agree."
            )
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
