"""The async transport's specification, beside the sync one's: one attempt, over real HTTP.

Every behaviour the two transports share runs over both, through the same check: the sync
``RequestsTransport`` (built as the hook builds it) and the async ``HttpxTransport`` (on a new
event loop per test, as a triggerer would run it). A failure must give the same
:class:`NoAnswer` flags whichever side met it, since the plans that judge it are shared. What is
the async transport's own (``aclose``) is tested for it alone; what is requests' own (session
caching of the environment, pool sizing, fork safety, test doubles) stays in test_transport.py.

Each test runs tiny loopback servers answering one way; none is mocked, and the servers are
released with events, never with sleeps.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest

from airflow_provider_jobmojito.transport import JobMojitoSession, PooledAdapter, RequestsTransport
from airflow_provider_jobmojito.transport_async import HttpxTransport
from airflow_provider_jobmojito.wire import MAX_ANSWER_BYTES, Answer, NoAnswer, Request

#: The transport's own headers, on every request (the hook gives both transports such a set).
HEADERS = {"User-Agent": "jobmojito-tests", "Accept": "application/json"}
TOKEN = "opaque-token-0123456789"

# --- Servers -------------------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    port: int  # the client's: one per connection

    def header(self, name: str) -> list[str]:
        """Every value sent under ``name``, whatever its case (a header sent twice shows twice)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


Reply = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    """A loopback HTTP/1.1 server: what it received, and how many connections it saw end."""

    url: str
    received: list[Received] = field(default_factory=list)
    connections_ended: int = 0
    ended: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_ended_connections(self, count: int) -> None:
        with self.ended:
            assert self.ended.wait_for(lambda: self.connections_ended >= count, timeout=30)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set when the test is over: a server holding an answer back (or dripping it) lets go."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def serve(release: threading.Event) -> Iterator[Callable[[Reply], Server]]:
    """Start a server that answers every request with ``reply(handler)``; stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> Server:
        state = Server(url="")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the API's servers

            def handle(self) -> None:
                try:
                    super().handle()
                except OSError:  # the client went away mid-answer: what some tests do on purpose
                    pass
                finally:
                    with state.ended:
                        state.connections_ended += 1
                        state.ended.notify_all()

            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers, port = list(self.headers.items()), self.client_address[1]
                state.received.append(Received(self.command, self.path, headers, body, port))
                reply(self)

            do_GET = do_POST = answer  # the names http.server dispatches to

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        # A short poll: shutting the server down waits for it, after every test.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_port}"
        return state

    yield start
    release.set()  # before shutting down: a handler still answering returns
    for server in servers:
        server.shutdown()
        server.server_close()


def reply(status: int, body: bytes = b"{}", **headers: str) -> Reply:
    """Answer ``status`` with ``body`` and ``headers`` (``Retry_After`` for ``Retry-After``)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


# --- The two transports, behind one call ---------------------------------------------------------


class Send(Protocol):
    """Send requests in turn through one new transport, then close it; the answers, in order."""

    name: str

    def __call__(
        self, *requests: Request, token: str | None = None, timeout: float = 5.0
    ) -> list[Answer]: ...


@dataclass
class SendSync:
    name: str = "requests"

    def __call__(self, *sent: Request, token: str | None = None, timeout: float = 5.0) -> list[Answer]:
        # Built as the hook builds its session: its headers, no urllib3 retries.
        session = JobMojitoSession()
        session.headers.update(HEADERS)
        session.mount("http://", PooledAdapter())
        session.mount("https://", PooledAdapter())
        transport = RequestsTransport(session)
        try:
            return [transport.send(request, token=token, timeout=timeout) for request in sent]
        finally:
            session.close()


@dataclass
class SendAsync:
    name: str = "httpx"

    def __call__(self, *sent: Request, token: str | None = None, timeout: float = 5.0) -> list[Answer]:
        async def scenario() -> list[Answer]:
            transport = HttpxTransport(HEADERS)  # inside the loop, as the hook builds it
            try:
                return [await transport.send(request, token=token, timeout=timeout) for request in sent]
            finally:
                await transport.aclose()

        return asyncio.run(scenario())


@pytest.fixture(params=[SendSync(), SendAsync()], ids=lambda send: send.name)
def send(request: pytest.FixtureRequest) -> Send:
    """Each transport in turn: the check that uses it holds for both."""
    sender: Send = request.param
    return sender


def send_one(send: Send, request: Request, *, token: str | None = None, timeout: float = 5.0) -> Answer:
    (answer,) = send(request, token=token, timeout=timeout)
    return answer


def no_answer(send: Send, request: Request, *, token: str | None = None, timeout: float = 5.0) -> NoAnswer:
    """The :class:`NoAnswer` sending ``request`` raises (the test fails if an answer comes)."""
    with pytest.raises(NoAnswer) as raised:
        send(request, token=token, timeout=timeout)
    return raised.value


def flags(failure: NoAnswer) -> dict[str, bool]:
    return {"timed_out": failure.timed_out, "permanent": failure.permanent, "too_slow": failure.too_slow}


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback calls go straight to the test's server, whatever proxy the machine running the
    tests sets (both transports honour these variables; the proxy tests set their own)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# --- What is sent --------------------------------------------------------------------------------


class TestWhatIsSent:
    def test_the_method_url_headers_and_body_of_the_request_are_sent_as_given(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        server = serve(reply(200))
        body = b'{"position_id":"p-1","status":"active"}'
        request = Request(
            "POST",
            f"{server.url}/functions/v1/job-interview-set-state?dry=1",
            {"Content-Type": "application/json", "X-Request-Source": "careers-dag"},
            body,
        )
        send_one(send, request, token=TOKEN)
        (received,) = server.received
        assert (received.method, received.path, received.body) == (
            "POST",
            "/functions/v1/job-interview-set-state?dry=1",
            body,
        )
        assert received.header("Content-Type") == ["application/json"]
        assert received.header("X-Request-Source") == ["careers-dag"]
        assert received.header("Content-Length") == [str(len(body))]

    def test_the_transports_own_headers_are_sent_and_a_request_header_of_the_same_name_wins(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        server = serve(reply(200))
        # Header names are not case-sensitive: "accept" replaces the transport's "Accept", as a
        # dict that minded the case would not (two Accept headers, the server picks either).
        send_one(send, Request("GET", f"{server.url}/x", {"accept": "text/plain"}))
        (received,) = server.received
        assert received.header("Accept") == ["text/plain"]
        assert received.header("User-Agent") == [HEADERS["User-Agent"]]

    @pytest.mark.parametrize("own", [{}, {"authorization": "Basic c29tZW9uZQ=="}], ids=["alone", "over-own"])
    def test_the_token_is_sent_as_a_bearer_once(
        self, send: Send, serve: Callable[[Reply], Server], own: dict[str, str]
    ) -> None:
        server = serve(reply(200))
        # A request's own authorization (which the client never builds) gives way to the token.
        send_one(send, Request("GET", f"{server.url}/x", own), token=TOKEN)
        (received,) = server.received
        assert received.header("Authorization") == [f"Bearer {TOKEN}"]

    def test_without_a_token_no_authorization_is_sent_not_even_from_netrc(
        self,
        send: Send,
        serve: Callable[[Reply], Server],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        server = serve(reply(200))
        # Both libraries can read ~/.netrc (requests does when trust_env is on): credentials found
        # there must not go to the API in place of the token the caller chose not to send.
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        send_one(send, Request("GET", f"{server.url}/x"), token=None)
        (received,) = server.received
        assert received.header("Authorization") == []

    def test_consecutive_requests_share_one_kept_alive_connection(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        server = serve(reply(200))
        first, second = send(Request("GET", f"{server.url}/a"), Request("GET", f"{server.url}/b"))
        assert (first.status, second.status) == (200, 200)
        assert [r.path for r in server.received] == ["/a", "/b"]
        assert len({r.port for r in server.received}) == 1


# --- What comes back -----------------------------------------------------------------------------


class TestAnswers:
    @pytest.mark.parametrize("status", [200, 204, 404, 429, 500, 503])
    def test_any_status_is_an_answer_with_its_headers_and_body(
        self, send: Send, serve: Callable[[Reply], Server], status: int
    ) -> None:
        body = b"" if status == 204 else b'{"error": "x"}'
        server = serve(reply(status, body, Retry_After="7"))
        answer = send_one(send, Request("GET", f"{server.url}/x"))
        assert answer.status == status
        assert answer.body == body
        assert answer.headers["retry-after"] == "7"  # looked up without regard to case

    def test_a_redirect_is_returned_not_followed(self, send: Send, serve: Callable[[Reply], Server]) -> None:
        elsewhere = serve(reply(200))
        redirector = serve(reply(307, b"", Location=f"{elsewhere.url}/functions/v1/x"))
        # Following would re-send the request, and the token, where the base URL did not say.
        answer = send_one(send, Request("POST", f"{redirector.url}/functions/v1/x", body=b"{}"), token=TOKEN)
        assert answer.status == 307
        assert answer.headers["location"] == f"{elsewhere.url}/functions/v1/x"
        assert elsewhere.received == []

    @pytest.mark.parametrize(
        ("encoding", "encode"),
        [
            ("gzip", gzip.compress),
            ("deflate", zlib.compress),  # zlib-wrapped, as the standard says
            ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as some servers send it
        ],
        ids=["gzip", "deflate", "raw deflate"],
    )
    def test_a_compressed_answer_is_decoded(
        self, send: Send, serve: Callable[[Reply], Server], encoding: str, encode: Callable[[bytes], bytes]
    ) -> None:
        body = b'{"data": [], "pagination": {"total": 0}}' * 1000
        server = serve(reply(200, encode(body), Content_Encoding=encoding))
        assert send_one(send, Request("GET", f"{server.url}/x")).body == body

    def test_a_body_that_does_not_decode_is_no_answer_worth_retrying(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        server = serve(reply(200, b"this is not gzip", Content_Encoding="gzip"))
        assert flags(no_answer(send, Request("GET", f"{server.url}/x"))) == {
            "timed_out": False,
            "permanent": False,
            "too_slow": False,
        }

    def test_an_answer_of_exactly_the_cap_is_read_in_full(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        server = serve(reply(200, b"x" * MAX_ANSWER_BYTES))
        assert len(send_one(send, Request("GET", f"{server.url}/x")).body) == MAX_ANSWER_BYTES


class TestAnswersTooLargeOrTooSlow:
    def test_an_answer_one_byte_over_the_cap_is_refused_for_good(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        server = serve(reply(200, b"x" * (MAX_ANSWER_BYTES + 1)))
        failure = no_answer(send, Request("GET", f"{server.url}/x"))
        assert flags(failure) == {"timed_out": False, "permanent": True, "too_slow": False}
        assert "is over 8 MiB once decoded" in failure.reason

    def test_an_answer_that_decompresses_past_the_cap_is_refused_for_good(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        bomb = gzip.compress(b"{" + b" " * (64 * 2**20) + b"}")  # 64 MiB of JSON in about 64 KiB
        assert len(bomb) < 2**20
        server = serve(reply(200, bomb, Content_Encoding="gzip"))
        failure = no_answer(send, Request("GET", f"{server.url}/x"))
        assert flags(failure) == {"timed_out": False, "permanent": True, "too_slow": False}
        assert "is over 8 MiB once decoded" in failure.reason

    def test_refusing_a_compressed_answer_holds_little_more_than_the_cap_in_memory(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        bomb = gzip.compress(b"{" + b" " * (64 * 2**20) + b"}")
        server = serve(reply(200, bomb, Content_Encoding="gzip"))
        tracemalloc.start()
        try:
            no_answer(send, Request("GET", f"{server.url}/x"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2 * MAX_ANSWER_BYTES

    def test_an_answer_dripping_past_twice_the_timeout_is_too_slow(
        self, send: Send, serve: Callable[[Reply], Server], release: threading.Event
    ) -> None:
        def drip(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            # A byte well within each read's timeout: only the whole answer's deadline can fire.
            while not release.wait(0.05):
                handler.wfile.write(b" ")
                handler.wfile.flush()

        server = serve(drip)
        failure = no_answer(send, Request("GET", f"{server.url}/x"), timeout=0.5)
        assert flags(failure) == {"timed_out": False, "permanent": False, "too_slow": True}
        assert "still arriving 1 s after it was sent (twice the timeout)" in failure.reason

    def test_an_answer_that_never_starts_is_a_timeout(
        self, send: Send, serve: Callable[[Reply], Server], release: threading.Event
    ) -> None:
        server = serve(lambda handler: release.wait())
        failure = no_answer(send, Request("GET", f"{server.url}/x"), timeout=0.2)
        assert flags(failure) == {"timed_out": True, "permanent": False, "too_slow": False}

    def test_a_body_that_stops_arriving_is_a_timeout(
        self, send: Send, serve: Callable[[Reply], Server], release: threading.Event
    ) -> None:
        def stall(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", "100")
            handler.end_headers()
            handler.wfile.write(b'{"data":')
            handler.wfile.flush()
            release.wait()

        server = serve(stall)
        failure = no_answer(send, Request("GET", f"{server.url}/x"), timeout=0.2)
        assert flags(failure) == {"timed_out": True, "permanent": False, "too_slow": False}


# --- Connections that fail -----------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused (and no other test can
    take the port meanwhile, as it could a port closed after use)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.fixture
def handshake_dropper() -> Iterator[str]:
    """A TCP server that accepts and closes at once, as a restarting load balancer does mid-TLS
    handshake; yields its https URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/x"
    listener.close()


class TestConnectionsThatFail:
    def test_a_refused_connection_is_transient(self, send: Send, closed_port: int) -> None:
        failure = no_answer(send, Request("GET", f"http://127.0.0.1:{closed_port}/x"))
        assert flags(failure) == {"timed_out": False, "permanent": False, "too_slow": False}

    def test_a_connection_dropped_before_the_answer_is_transient(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        def hang_up(handler: BaseHTTPRequestHandler) -> None:
            handler.close_connection = True

        server = serve(hang_up)
        failure = no_answer(send, Request("POST", f"{server.url}/x", body=b"{}"))
        assert flags(failure) == {"timed_out": False, "permanent": False, "too_slow": False}

    def test_a_connection_dropped_mid_answer_is_transient(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        def cut(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", "100")
            handler.end_headers()
            handler.wfile.write(b'{"data":')
            handler.close_connection = True

        server = serve(cut)
        failure = no_answer(send, Request("GET", f"{server.url}/x"))
        assert flags(failure) == {"timed_out": False, "permanent": False, "too_slow": False}

    def test_tls_spoken_to_a_plain_http_port_is_permanent(
        self, send: Send, serve: Callable[[Reply], Server]
    ) -> None:
        # As a certificate that does not verify: the same however often it is retried.
        server = serve(reply(200))
        url = server.url.replace("http://", "https://")
        failure = no_answer(send, Request("GET", f"{url}/x"))
        assert flags(failure) == {"timed_out": False, "permanent": True, "too_slow": False}
        assert server.received == []

    def test_a_tls_handshake_cut_short_is_transient(self, send: Send, handshake_dropper: str) -> None:
        failure = no_answer(send, Request("GET", handshake_dropper))
        assert flags(failure) == {"timed_out": False, "permanent": False, "too_slow": False}


class TestRequestsThatCannotBeSent:
    SECRET = "secret-after-the-line-break-0123456789"

    @pytest.mark.parametrize(
        ("token", "headers"),
        [
            (f"x\n{SECRET}", {}),
            (f"x\r\n{SECRET}", {}),
            (f"\u20ac{SECRET}", {}),
            (TOKEN, {"X-Request-Source": f"x\n{SECRET}"}),
        ],
        ids=[
            "line-feed-in-the-token",
            "crlf-in-the-token",
            "beyond-latin-1-in-the-token",
            "line-feed-in-a-request-header",
        ],
    )
    def test_a_header_value_http_cannot_carry_is_refused_for_good_without_quoting_it(
        self,
        send: Send,
        serve: Callable[[Reply], Server],
        token: str,
        headers: dict[str, str],
    ) -> None:
        server = serve(reply(200))
        failure = no_answer(send, Request("GET", f"{server.url}/x", headers), token=token)
        assert flags(failure) == {"timed_out": False, "permanent": True, "too_slow": False}
        assert "cannot carry (value not shown)" in failure.reason
        assert self.SECRET not in failure.reason
        assert failure.__cause__ is None
        assert failure.__suppress_context__  # raised from None: no traceback shows the value
        assert server.received == []


# --- Proxies -------------------------------------------------------------------------------------


class TestProxiesFromTheEnvironment:
    def test_http_proxy_carries_the_request(
        self, send: Send, serve: Callable[[Reply], Server], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A host that does not exist is reachable only through the proxy, which gets the
        # request in absolute form, the token with it.
        proxy = serve(reply(200, b'{"success": true}'))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        answer = send_one(send, Request("GET", "http://jobmojito.invalid/functions/v1/x"), token=TOKEN)
        assert answer.json() == {"success": True}
        (received,) = proxy.received
        assert received.path == "http://jobmojito.invalid/functions/v1/x"
        assert received.header("Authorization") == [f"Bearer {TOKEN}"]

    def test_no_proxy_sends_the_request_straight_to_the_host(
        self, send: Send, serve: Callable[[Reply], Server], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        proxy, api = serve(reply(200)), serve(reply(200))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        send_one(send, Request("GET", f"{api.url}/x"))
        assert [r.path for r in api.received] == ["/x"]
        assert proxy.received == []


# --- The async transport's own -------------------------------------------------------------------


def test_the_async_transport_asks_only_for_the_encodings_it_decodes_in_steps(
    serve: Callable[[Reply], Server],
) -> None:
    server = serve(reply(200))
    SendAsync()(Request("GET", f"{server.url}/x"))
    assert server.received[0].header("Accept-Encoding") == ["gzip, deflate"]


def test_the_async_transport_refuses_an_encoding_it_cannot_decode_for_good(
    serve: Callable[[Reply], Server],
) -> None:
    server = serve(reply(200, b"...", Content_Encoding="br"))
    with pytest.raises(NoAnswer) as raised:
        SendAsync()(Request("GET", f"{server.url}/x"))
    assert raised.value.permanent
    assert "encoded as 'br'" in raised.value.reason


def test_aclose_closes_the_kept_alive_connections(serve: Callable[[Reply], Server]) -> None:
    server = serve(reply(200))

    async def scenario() -> None:
        transport = HttpxTransport(HEADERS)
        await transport.send(Request("GET", f"{server.url}/x"), token=None, timeout=5)
        assert server.connections_ended == 0  # kept alive for the next call
        await transport.aclose()
        await asyncio.to_thread(server.wait_for_ended_connections, 1)

    asyncio.run(scenario())
    assert server.connections_ended == 1
