"""The sandbox's HTTP layer and :class:`SandboxServer`, its Python-side handle."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal

from .app import SandboxApp
from .faults import parse_fault
from .messages import Request, Response, json_response
from .ratelimit import SIGN_IN_CAPACITY, SIGN_IN_REFILL_PER_SECOND, SignInLimiter
from .results import ResultChange
from .state import Position, PositionStore, canonical_uuid, check_status, parse_seed
from .tokens import TokenAuthority

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from types import TracebackType

    from .state import Clock

DEFAULT_EMAIL = "demo@jobmojito.test"
DEFAULT_PASSWORD = "sandbox-password"  # noqa: S105 - a public, documented sandbox credential
#: Where to reach a server bound to a wildcard address.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - not a bind
#: Largest request body read; anything bigger is answered 413 without being read.
MAX_BODY_BYTES = 1 << 20


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JobMojitoSandbox/1.0"
    # Each response goes out in one small write; Nagle's algorithm would only ever delay it.
    disable_nagle_algorithm = True
    # Malformed requests are refused by the base class; answer them in the API's error shape too.
    # Only the fixed explanation is used: the message can quote client bytes that break JSON.
    error_message_format = '{"error": "%(explain)s"}'
    error_content_type = "application/json"
    server: _HTTPServer

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as error:
            self.close_connection = True
            self._write(json_response(error.status, {"error": error.message}))
            return
        request = Request(
            self.command, self.path, dict(self.headers.items()), body, str(self.client_address[0])
        )
        try:
            response = self.server.app.handle(request)
        except Exception:
            # A bug in the sandbox must still get an answer, never a silently closed socket.
            traceback.print_exc(file=sys.stderr)
            response = json_response(500, {"error": "Internal sandbox error."})
        if response is None:  # a "drop" fault: no answer at all, just a closed socket
            self.close_connection = True
            return
        self._write(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Any other method (TRACE, CONNECT, QUERY, ...): the base class looks for do_<METHOD> and
        # answers 501 without one. Routing it answers as for PUT on a GET route: 401 without a
        # token on an API route, 404 for an unknown path, otherwise 405 with the route's Allow.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _BodyError(400, "Invalid Content-Length.") from None
        if length < 0:
            raise _BodyError(400, "Invalid Content-Length.")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, "Request body too large.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BodyError(400, "Invalid chunked encoding.") from None
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(413, "Request body too large.")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF closing the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers: read and ignored
        return b"".join(chunks)

    def _write(self, response: Response) -> None:
        lines = [
            f"{self.protocol_version} {response.status} {self.responses.get(response.status, ('',))[0]}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = head if self.command == "HEAD" else head + response.body
        self.log_request(response.status)
        self.wfile.write(payload)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # Every answer's Date (error answers of the base class too) reads the sandbox's clock, as
        # the timestamps do: a test that moves the clock moves the API's time.
        return super().date_time_string(self.server.app.clock() if timestamp is None else timestamp)

    def address_string(self) -> str:
        # Never a reverse DNS lookup per request.
        return str(self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status are ever logged here; headers (tokens) never are.
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 refuses connections when many client threads connect at once.
    request_queue_size = 128
    # Upper bound on how long the accept loop takes to notice a stop request if the wake-up
    # connection (see SandboxServer.stop) could not be made.
    timeout = 0.5

    def __init__(self, address: tuple[str, int], app: SandboxApp, *, verbose: bool) -> None:
        self.app = app
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections, so they end now."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class SandboxServer:
    """A JobMojito-compatible HTTP server for offline development and tests.

    Routes: the API under ``/functions/v1``, Supabase's password grant under ``/auth/v1``, and an
    unauthenticated control API under ``/_sandbox``.

    :param host: interface to bind.
    :param port: port to bind; 0 picks a free one (read it back from :attr:`port` or :attr:`url`).
    :param token_lifetime: default seconds an issued token is valid.
    :param email: e-mail the password grant accepts.
    :param password: password the password grant accepts.
    :param anon_key: when set, ``/auth/v1`` requests need ``apikey: <anon_key>``.
    :param jwt_secret: HS256 key for tokens; random when ``None``.
    :param state_file: JSON file loaded at start if it exists and rewritten after every change.
    :param positions: positions to seed (seed objects or :class:`Position`), after the state file.
    :param verbose: log each request line to stderr.
    :param request_log_limit: requests the log keeps, oldest dropped first (``None``: all).
    :param sign_in_limit: enforce Supabase's rate limit on the password grant (429 once a client
        has used up its bucket); sign-ins are counted either way.
    :param sign_in_capacity: requests a client's bucket holds (Supabase: 30).
    :param sign_in_refill_per_second: requests a bucket gets back per second (GoTrue's default:
        150 per 5 minutes, 0.5).
    :param clock: seconds since the epoch, read for ``updated_at``/``created_at`` stamps, the
        answers' ``Date`` header and by the sign-in buckets (e.g. a :class:`ManualClock`); the real
        clock when ``None``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token_lifetime: int = 3600,
        email: str = DEFAULT_EMAIL,
        password: str = DEFAULT_PASSWORD,
        anon_key: str | None = None,
        jwt_secret: str | None = None,
        state_file: str | os.PathLike[str] | None = None,
        positions: Iterable[Mapping[str, Any] | Position] | None = None,
        verbose: bool = False,
        request_log_limit: int | None = 100_000,
        sign_in_limit: bool = True,
        sign_in_capacity: int = SIGN_IN_CAPACITY,
        sign_in_refill_per_second: float = SIGN_IN_REFILL_PER_SECOND,
        clock: Clock | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._verbose = verbose
        self.app = SandboxApp(
            TokenAuthority(jwt_secret, token_lifetime),
            PositionStore(state_file, clock),
            email=email,
            password=password,
            anon_key=anon_key,
            request_log_limit=request_log_limit,
            sign_ins=SignInLimiter(
                enabled=sign_in_limit,
                capacity=sign_in_capacity,
                refill_per_second=sign_in_refill_per_second,
                clock=clock,
            ),
            clock=clock,
        )
        if positions is not None:
            self.seed(positions)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind and serve from a background thread.

        :return: ``self``, so ``server = SandboxServer().start()`` reads naturally.
        :raises RuntimeError: when already started.
        :raises OSError: when the address cannot be bound.
        """
        if self._httpd is not None:
            raise RuntimeError("SandboxServer is already started")
        server_class = _HTTPServer6 if ":" in self.host else _HTTPServer
        self._httpd = server_class((self.host, self._requested_port), self.app, verbose=self._verbose)
        self.app.tokens.issuer = f"{self.url}/auth/v1"
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve,
            args=(self._httpd, self._stopping),
            name=f"jobmojito-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @staticmethod
    def _serve(httpd: _HTTPServer, stopping: threading.Event) -> None:
        # Not serve_forever(): its shutdown() waits out a polling interval, which a test suite
        # starting a server per test pays on every teardown. This loop blocks in accept and is
        # woken by a connection from stop().
        while not stopping.is_set():
            httpd.handle_request()

    def stop(self) -> None:
        """Stop serving, close open connections and release the port; a no-op when not running."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        address = (_LOOPBACK.get(self.host, self.host), self.port)
        self._httpd = self._thread = None
        self._stopping.set()
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=1).close()
        if thread is not None:
            thread.join(timeout=5)
        httpd.server_close()
        httpd.close_connections()

    def __enter__(self) -> SandboxServer:
        return self if self._httpd is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port.

        :raises RuntimeError: before :meth:`start`.
        """
        if self._httpd is None:
            raise RuntimeError("SandboxServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080`` (the Supabase URL for sign-in)."""
        host = _LOOPBACK.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:8080/functions/v1`` (the hook's host)."""
        return f"{self.url}/functions/v1"

    # -- Python mirror of the control API ----------------------------------------------------

    def seed(
        self, positions: Iterable[Mapping[str, Any] | Position] | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Add or overwrite positions, as ``POST /_sandbox/positions``.

        :param positions: seed objects (``{"id", "status", "name", "embedded"}``...), ``Position``
            instances, or a whole ``{"positions": [...]}`` document.
        :return: the stored rows, embed credentials included.
        :raises ValidationError: for an invalid seed.
        """
        if isinstance(positions, Mapping):
            parsed = parse_seed(positions)
        else:
            parsed = [p if isinstance(p, Position) else Position.from_seed(p) for p in positions]
        return self.app.store.seed(parsed)

    def positions(self) -> dict[str, dict[str, Any]]:
        """Every position by id, embed credentials included."""
        return {row["id"]: row for row in self.app.store.all()}

    def position(self, position_id: str) -> dict[str, Any]:
        """One position, embed credentials included.

        :param position_id: its UUID (any case).
        :raises KeyError: when there is no such position.
        :raises ValidationError: when ``position_id`` is not a UUID.
        """
        return self.app.store.get(canonical_uuid(position_id, "position_id"))

    def admin_set_status(self, position_id: str, status: str) -> dict[str, Any]:
        """Change a position's status as JobMojito's admin app does (say, a recruiter closing it),
        not through set-state; moves ``updated_at``. As ``POST /_sandbox/positions/<id>/status``.

        :param position_id: its UUID (any case).
        :param status: one of :data:`POSITION_STATUSES`.
        :return: the position as stored.
        :raises KeyError: when there is no such position.
        :raises ValidationError: when ``position_id`` is not a UUID or ``status`` not a status.
        """
        return self.app.store.admin_set_status(
            canonical_uuid(position_id, "position_id"), check_status(status)
        )

    def sign_ins(self) -> dict[str, int]:
        """Password-grant attempts so far, as ``GET /_sandbox/sign-ins``: ``total`` = ``succeeded``
        + ``failed`` (400: bad body or credentials) + ``refused`` (429: over the rate limit)."""
        return self.app.sign_ins.counts()

    def clear_sign_ins(self) -> None:
        """Zero the sign-in counts and refill every bucket, as ``DELETE /_sandbox/sign-ins``."""
        self.app.sign_ins.reset()

    def configure_sign_in_limit(
        self,
        enabled: bool | None = None,
        *,
        capacity: int | None = None,
        refill_per_second: float | None = None,
    ) -> dict[str, Any]:
        """Change the sign-in rate limit at run time, as ``POST /_sandbox/sign-in-limit``; every
        bucket starts full again. Without arguments, only reads the settings.

        :return: ``{"enabled", "capacity", "refill_per_second"}``.
        :raises ValidationError: for a capacity below 1 or a negative refill rate.
        """
        if enabled is None and capacity is None and refill_per_second is None:
            return self.app.sign_ins.settings()
        return self.app.sign_ins.configure(
            enabled=enabled, capacity=capacity, refill_per_second=refill_per_second
        )

    def requests_log(self) -> list[dict[str, Any]]:
        """The API and auth requests received so far, oldest first, secrets redacted."""
        return self.app.log.entries()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.app.log.clear()

    def reset(self) -> None:
        """Forget positions, logged requests, faults and sign-in counts (buckets refill);
        credentials, the JWT secret and the sign-in limit's settings stay."""
        self.app.reset()

    def add_fault(
        self,
        kind: Literal["status", "answer", "delay", "drop", "change"],
        *,
        count: int = 1,
        path: str | None = None,
        query: Mapping[str, str | int] | None = None,
        status: int | None = None,
        retry_after: str | int | None = None,
        body: Any = None,
        seconds: float | None = None,
        position_id: str | None = None,
        position_status: str | None = None,
    ) -> dict[str, Any]:
        """Queue a fault, as ``POST /_sandbox/faults``.

        :param kind: ``"status"``, ``"answer"`` (``200`` with ``body``), ``"delay"``, ``"drop"`` or
            ``"change"`` (an admin change of ``position_id`` to ``position_status`` just before the
            request is answered normally: e.g. a position that leaves a status between two pages).
        :param count: how many matching requests it applies to.
        :param path: exact request path it applies to; ``None`` means every API and auth route.
        :param query: query parameters a matching request carries with these values, e.g.
            ``{"offset": 1000}``; ``None`` means any query.
        :param status: the status code to answer (``status`` kind).
        :param retry_after: ``Retry-After`` header value (``status`` kind).
        :param body: body to answer (``status`` and ``answer`` kinds): JSON object/array, or text.
        :param seconds: how long to wait before answering normally (``delay`` kind).
        :param position_id: the position to change (``change`` kind).
        :param position_status: its new status (``change`` kind).
        :return: the queued fault.
        :raises ValidationError: for an invalid combination.
        """
        options = {
            "query": query,
            "status": status,
            "retry_after": retry_after,
            "body": body,
            "seconds": seconds,
            "position_id": position_id,
            "position_status": position_status,
        }
        spec = {"kind": kind, "count": count, "path": path}
        spec.update((key, value) for key, value in options.items() if value is not None)
        fault = parse_fault(spec)
        self.app.faults.add(fault)
        return fault.to_dict()

    def change_results(self, **change: Any) -> dict[str, Any]:
        """Create and update interview results, as ``POST /_sandbox/results`` (the keys of
        :class:`~airflow_provider_jobmojito.sandbox.results.ResultChange`: ``create``, ``update``,
        ``ids``, ``definition_id``, ``type``, ``is_test``, ``at``, ``spread_seconds``).

        :return: ``{"created": [ids], "updated": [ids]}``.
        :raises ValidationError: for an invalid change.
        """
        return self.app.results.apply(ResultChange.parse(change))

    def faults(self) -> list[dict[str, Any]]:
        """The queued faults, head first."""
        return self.app.faults.pending()

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self.app.faults.clear()

    def issue_token(self, lifetime: int | None = None, email: str | None = None) -> str:
        """Mint an access token the API accepts, as ``POST /_sandbox/tokens``.

        :param lifetime: seconds until it expires (default: the server's token lifetime); zero or
            negative gives an already-expired token.
        :param email: its ``email`` claim (default: the configured sign-in e-mail).
        """
        return self.app.tokens.issue(email or self.app.email, lifetime).access_token

    def revoke_token(self, token: str) -> None:
        """Sign out the session of ``token``: the API refuses it (401) from now on, as
        ``POST /_sandbox/tokens/revoke {"token": ...}``.

        :raises TokenError: for a token this sandbox did not sign.
        """
        self.app.tokens.revoke(token)

    def revoke_sessions(self, email: str | None = None) -> int:
        """Sign out every session issued so far to ``email`` (default: the sign-in e-mail), as
        ``POST /_sandbox/tokens/revoke {"email": ...}``; tokens issued later are valid.

        :return: how many sessions were signed out.
        """
        return self.app.tokens.revoke_user(email or self.app.email)

    def change_password(self, password: str) -> None:
        """Make the password grant accept ``password`` (and no longer the old one), as
        ``POST /_sandbox/password``. Tokens already issued stay valid until revoked or expired.

        :raises ValueError: for an empty password.
        """
        if not password:
            raise ValueError("The password must not be empty.")
        self.app.password = password

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "not started"
        return f"<SandboxServer {where}>"
