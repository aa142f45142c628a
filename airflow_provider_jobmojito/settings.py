"""Hook settings: keyword arguments merged over connection extras, merged over defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_jobmojito.connection import DEFAULT_API_URL, EXTRAS, parse_header_secret, parse_url
from airflow_provider_jobmojito.exceptions import JobMojitoConfigError
from airflow_provider_jobmojito.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Older Airflow forms stored extras under this prefix; both spellings are read.
_LEGACY_EXTRA_PREFIX = "extra__jobmojito__"


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
        parsed = {name: extra.read(values.get(name)) for name, extra in EXTRAS.items()}
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
    return parse_header_secret("The access token (the connection's password)", password)


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
    url = parse_url("host", host)
    if port:
        # A full URL in host with the port in its own field, as a JSON connection may give it.
        parts = urlsplit(url)
        if parts.port is None:
            url = parse_url("port", parts._replace(netloc=f"{parts.netloc}:{port}").geturl())
        elif parts.port != int(port):
            raise JobMojitoConfigError(
                f"The connection's host {host!r} names port {parts.port}, but its port field says "
                f"{port}: leave the port field empty, or make them agree."
            )
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
