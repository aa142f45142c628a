"""How the hook's HTTP requests reach the wire: through the urllib3 pools of a ``requests.Session``.

``requests.Session.request`` costs about a millisecond of CPU per call (most of it reading proxy
settings from the environment, twice, and building request and response objects), which is more
than the rest of a loopback call and caps how far a thread pool can parallelise calls under the
GIL. :class:`Transport` sends through the very same connection pools the session's
:class:`~requests.adapters.HTTPAdapter` owns, with the session's headers, proxies and TLS settings
(resolved once per host, as requests would resolve them), and skips the rest:

* keep-alive connections are shared with anything else sent through ``hook.get_conn()``;
* ``HTTP(S)_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` and the session's
  ``proxies``, ``verify`` and ``cert`` are honoured; environment variables are read on the first
  call to each host;
* redirects are not followed on either path: a base URL that redirects is a configuration error,
  and following it would re-send a POST (or turn it into a GET);
* anything unusual goes through ``session.request`` unchanged, so requests' semantics hold where
  they matter: a session with ``auth``, cookies, ``params`` or response hooks, an adapter that is
  not a stock ``HTTPAdapter`` (a test double such as requests-mock's), and requests' sending
  methods replaced by a test (``responses``, ``mock.patch``).

Either way the caller gets an :class:`Answer` or a :class:`NoAnswer`, so retries and error
mapping live in one place (the hook).
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import DEFAULT_POOLSIZE, BaseAdapter, HTTPAdapter
from requests.utils import prepend_scheme_if_needed, select_proxy
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

if TYPE_CHECKING:
    from collections.abc import Mapping

_GROW_LOCK = threading.Lock()


def _requests_is_unpatched() -> bool:
    """Whether requests' sending methods are requests' own code.

    A test that patches one of them (``responses`` patches ``HTTPAdapter.send``,
    ``mock.patch("requests.Session.request")``...) must keep seeing every call. Checked by where
    the functions come from rather than against copies taken at import, since a test may patch
    before this module is first imported.
    """
    return all(
        getattr(function, "__module__", "") == module and getattr(function, "__qualname__", "") == name
        for function, module, name in (
            (requests.Session.request, "requests.sessions", "Session.request"),
            (requests.Session.send, "requests.sessions", "Session.send"),
            (HTTPAdapter.send, "requests.adapters", "HTTPAdapter.send"),
        )
    )


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whichever way it came.

    :param status: the status code.
    :param headers: the headers, looked up without regard to case.
    :param body: the body, decoded from any content encoding.
    """

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not JSON."""
        return json.loads(self.body)


class NoAnswer(Exception):
    """No answer came: the connection failed, or the timeout passed first.

    :param reason: what happened, short, e.g. ``NewConnectionError: ... Connection refused``.
    :param timed_out: whether the timeout passed (rather than the connection failing).
    :param permanent: whether retrying cannot help (a certificate that does not verify, a
        request that cannot be built).
    """

    def __init__(self, reason: str, *, timed_out: bool, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out
        #: A failure no retry can fix, e.g. a certificate that does not verify.
        self.permanent = permanent


class PooledAdapter(HTTPAdapter):
    """requests' ``HTTPAdapter`` without urllib3 retries, whose pools can grow for parallel calls."""

    connections: int
    maxsize: int
    block: bool

    def __init__(self) -> None:
        # Retries are the hook's own (they honour Retry-After and know which calls are safe),
        # so urllib3's are switched off rather than stacked on top.
        super().__init__(max_retries=0, pool_maxsize=DEFAULT_POOLSIZE)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        self.connections, self.maxsize, self.block = connections, maxsize, block
        super().init_poolmanager(connections, maxsize, block, **kwargs)

    def grow(self, maxsize: int) -> None:
        """Keep up to ``maxsize`` connections per host alive; a no-op when it already does.

        A urllib3 pool cannot grow in place, so idle connections are closed and new pools of the
        new size replace the old ones. A pool smaller than the number of threads using it would
        close a connection after nearly every call instead of keeping it alive.
        """
        with _GROW_LOCK:
            if maxsize <= self.maxsize:
                return
            self.poolmanager.clear()
            for manager in self.proxy_manager.values():
                manager.clear()
            self.proxy_manager.clear()
            self.init_poolmanager(self.connections, maxsize, self.block)


@dataclass
class _Route:
    """How to reach one origin through one adapter, resolved once."""

    adapter: HTTPAdapter
    host: str
    port: int | None
    scheme: str
    proxy: str | None
    full_url_target: bool
    pool_kwargs: dict[str, Any]
    verify: Any
    cert: Any
    #: The pool last used, and the pool manager it came from: reused while both are current.
    pool: Any = None
    manager: Any = None


class Transport:
    """Send requests through a session's urllib3 pools; see the module docstring.

    :param session: the session whose adapters, headers, proxies and TLS settings are used.
    """

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._routes: dict[tuple[Any, ...], _Route] = {}
        self._timeouts: dict[float, urllib3.Timeout] = {}

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float,
    ) -> Answer:
        """Send one request, once.

        :param url: the full URL, query string included.
        :param headers: headers on top of the session's.
        :param body: the encoded body (set ``Content-Type`` in ``headers``).
        :param timeout: seconds to connect, and seconds to wait for each read.
        :raises NoAnswer: when the connection failed or timed out.
        """
        route = self._route(url)
        if route is None:
            return self._send_with_requests(method, url, headers=headers, body=body, timeout=timeout)
        # As requests merges them: the session's headers, overridden case-insensitively, None dropped.
        overridden = {name.lower() for name in headers}
        merged = {
            name: value
            for name, value in self.session.headers.items()
            if value is not None and name.lower() not in overridden
        }
        merged.update(headers)
        parts = urlsplit(url)
        if route.full_url_target:
            target = url
        else:
            target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        try:
            response = self._pool(route, url).urlopen(
                method,
                target,
                body=body,
                headers=merged,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
                decode_content=True,
                timeout=self._timeout(timeout),
            )
        except NewConnectionError as exc:  # a subclass of ConnectTimeoutError, but refused, not slow
            raise NoAnswer(_describe(exc), timed_out=False) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise NoAnswer(_describe(exc), timed_out=True) from exc
        except SSLError as exc:
            raise NoAnswer(_describe(exc), timed_out=False, permanent=_tls_is_permanent(exc)) from exc
        except (HTTPError, OSError) as exc:
            raise NoAnswer(_describe(exc), timed_out=False) from exc
        except (ValueError, UnicodeError) as exc:
            raise _unsendable(exc) from None
        return Answer(response.status, response.headers, response.data)

    def _send_with_requests(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Answer:
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=timeout,
                allow_redirects=False,
                # A no-op auth: without it requests would put ~/.netrc credentials over the bearer.
                auth=_keep_authorization,
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
        return Answer(response.status_code, response.headers, response.content)

    # -- routing ---------------------------------------------------------------------------------

    def _route(self, url: str) -> _Route | None:
        """How to send to ``url`` directly, or ``None`` to send it through ``session.request``."""
        session = self.session
        if session.auth is not None or session.params or session.cookies or any(session.hooks.values()):
            return None
        if not _requests_is_unpatched():
            return None
        adapter = session.get_adapter(url)
        if not _sends_like_http_adapter(adapter):
            return None
        parts = urlsplit(url)
        proxies = session.proxies
        key = (
            adapter,
            parts.scheme,
            parts.netloc,
            session.trust_env,
            session.verify,
            session.cert,
            tuple(proxies.items()) if proxies else (),
        )
        try:
            route = self._routes.get(key)
        except TypeError:  # an unhashable setting, e.g. cert given as a list: let requests read it
            return None
        if route is None:
            route = self._routes[key] = _resolve(session, adapter, url)
        return route

    def _pool(self, route: _Route, url: str) -> Any:
        adapter = route.adapter
        manager = adapter.poolmanager if route.proxy is None else adapter.proxy_manager_for(route.proxy)
        pool = route.pool
        # A pool is closed (its queue set to None) when its manager evicts or clears it, and the
        # manager is replaced when the adapter grows: then look the pool up again.
        if pool is None or pool.pool is None or route.manager is not manager:
            pool = manager.connection_from_host(
                route.host, route.port, route.scheme, pool_kwargs=route.pool_kwargs
            )
            # Sets the CA bundle (certifi's by default) on the pool, as every requests call does.
            adapter.cert_verify(pool, url, route.verify, route.cert)  # type: ignore[no-untyped-call]
            route.pool, route.manager = pool, manager
        return pool

    def _timeout(self, seconds: float) -> urllib3.Timeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = urllib3.Timeout(connect=seconds, read=seconds)
        return timeout


_ADAPTER_KINDS: dict[type[BaseAdapter], bool] = {}


def _sends_like_http_adapter(adapter: BaseAdapter) -> TypeGuard[HTTPAdapter]:
    """Whether an adapter sends as requests' own ``HTTPAdapter`` does (a subclass may configure its
    pools, e.g. with an SSL context, but not send differently); test doubles such as requests-mock's
    do not. Answered once per adapter class."""
    kind = type(adapter)
    verdict = _ADAPTER_KINDS.get(kind)
    if verdict is None:
        verdict = _ADAPTER_KINDS[kind] = issubclass(kind, HTTPAdapter) and all(
            getattr(kind, name) is getattr(HTTPAdapter, name)
            for name in ("send", "build_response", "add_headers", "request_url")
        )
    return verdict


def _resolve(session: requests.Session, adapter: HTTPAdapter, url: str) -> _Route:
    """Resolve proxies and TLS settings for ``url`` as ``Session.request`` and ``HTTPAdapter.send`` do."""
    settings = session.merge_environment_settings(url, {}, None, None, None)
    verify, cert = settings["verify"], settings["cert"]
    proxy = select_proxy(url, settings["proxies"])
    if proxy:
        proxy = prepend_scheme_if_needed(proxy, "http")  # type: ignore[no-untyped-call]
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    # As requests' _urllib3_request_context: these select (and configure) the pool.
    pool_kwargs: dict[str, Any] = {"cert_reqs": "CERT_NONE" if verify is False else "CERT_REQUIRED"}
    if isinstance(verify, str):
        import os

        pool_kwargs["ca_cert_dir" if os.path.isdir(verify) else "ca_certs"] = verify
    if cert is not None:
        if isinstance(cert, tuple) and len(cert) == 2:
            pool_kwargs["cert_file"], pool_kwargs["key_file"] = cert
        else:
            pool_kwargs["cert_file"] = cert
    # As HTTPAdapter.request_url: a plain-HTTP request through an HTTP proxy names the whole URL.
    full_url_target = bool(proxy) and scheme != "https" and not str(proxy).lower().startswith("socks")
    return _Route(
        adapter=adapter,
        host=parts.hostname or "",
        port=parts.port,
        scheme=scheme,
        proxy=proxy or None,
        full_url_target=full_url_target,
        pool_kwargs=pool_kwargs,
        verify=verify,
        cert=cert,
    )


def _keep_authorization(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


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
    """A request that cannot be built, e.g. a header value with a line break. The error's own
    text would quote the value, which may be the token: only its type is kept, and the chain
    is cut (``from None``) so no traceback shows it either."""
    return NoAnswer(
        f"{type(exc).__name__}: a header or the URL holds characters HTTP cannot carry (value not shown)",
        timed_out=False,
        permanent=True,
    )


def _describe(exc: BaseException) -> str:
    """E.g. ``NewConnectionError: HTTPConnection(host='127.0.0.1', port=9): ... refused``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
