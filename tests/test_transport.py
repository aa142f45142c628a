"""How the hook's calls reach the wire: through its requests.Session, once per attempt."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowFailException
from requests.adapters import BaseAdapter

from airflow_provider_jobmojito.exceptions import JobMojitoConfigError, JobMojitoUnavailableError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.transport import NoAnswer, Request, RequestsTransport

POSITION = "2b4d6f80-1a3c-4e5f-8a9b-0c1d2e3f4a5b"
SET_STATE = "/functions/v1/job-interview-set-state"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    return jobmojito_sandbox


def test_session_headers_set_by_the_user_are_sent(sandbox: Any, jobmojito_conn: Any) -> None:
    hook = JobMojitoHook(jobmojito_conn())
    hook.get_conn().headers["X-Request-Source"] = "careers-dag"
    hook.get_conn().headers["Accept"] = None  # None removes a header, as in requests
    hook.set_interview_state(POSITION, status="active")
    (call,) = sandbox.requests_log()
    headers = {name.lower(): value for name, value in call["headers"].items()}
    assert headers["x-request-source"] == "careers-dag"
    assert "accept" not in headers
    assert headers["content-type"] == "application/json"


def test_a_proxy_from_the_environment_is_used(
    sandbox: Any, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox serves by path, so it can stand in for a forward proxy: a host that does not
    # exist is reachable only through it.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", sandbox.url)
    hook = JobMojitoHook(jobmojito_conn(host="http://jobmojito.invalid/functions/v1"), max_retries=0)
    assert hook.set_interview_state(POSITION, status="archived") == {"success": True}
    assert sandbox.position(POSITION)["status"] == "archived"


@pytest.fixture
def redirector(sandbox: Any) -> Iterator[str]:
    """A server that answers every request with a 307 to the same path on the sandbox."""

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", f"{sandbox.url}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_redirect_is_a_configuration_error_and_is_not_followed(
    sandbox: Any, jobmojito_conn: Any, redirector: str
) -> None:
    hook = JobMojitoHook(jobmojito_conn(host=f"{redirector}/functions/v1"))
    # Following would re-send the POST to another host (or turn it into a GET); the token never
    # goes where the base URL did not say.
    with pytest.raises(
        JobMojitoConfigError, match=r"redirected \(307\) to 'http://127\.0\.0\.1:\d+/functions"
    ):
        hook.set_interview_state(POSITION, status="completed")
    assert sandbox.requests_log() == []
    assert sandbox.position(POSITION)["status"] == "draft"


def test_a_tls_failure_is_permanent_and_not_retried(sandbox: Any, jobmojito_conn: Any) -> None:
    # The sandbox speaks plain HTTP: a TLS handshake with it fails as a bad certificate would.
    hook = JobMojitoHook(jobmojito_conn(host=sandbox.api_url.replace("http://", "https://")))
    with pytest.raises(JobMojitoConfigError, match="no retry can help") as raised:
        hook.set_interview_state(POSITION, status="completed")
    assert isinstance(raised.value, AirflowFailException)


@pytest.fixture
def handshake_dropper() -> Iterator[tuple[str, list[int]]]:
    """A TCP server that accepts and closes at once, as a restarting load balancer does mid-TLS
    handshake; yields its https base URL and a list with one entry per connection accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            accepted.append(1)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/functions/v1", accepted
    listener.close()


def test_a_tls_handshake_cut_short_is_transient_and_retried(
    handshake_dropper: tuple[str, list[int]], jobmojito_conn: Any
) -> None:
    url, accepted = handshake_dropper
    hook = JobMojitoHook(jobmojito_conn(host=url), max_retries=2, backoff_max=0)
    # "EOF occurred" or "Connection reset by peer", depending on when the server's close lands.
    with pytest.raises(
        JobMojitoUnavailableError, match=r"could not be reached .* gave up after 3 attempt"
    ) as raised:
        hook.set_interview_state(POSITION, status="active")
    assert not isinstance(raised.value, AirflowFailException)
    assert len(accepted) == 3


def test_a_header_value_http_cannot_carry_is_refused_without_quoting_it(sandbox: Any) -> None:
    secret = "secret-after-the-line-break-0123456789"
    with pytest.raises(NoAnswer) as raised:
        RequestsTransport(requests.Session()).send(
            Request("GET", sandbox.url + "/_sandbox/health"), token=f"x\n{secret}", timeout=5
        )
    assert raised.value.permanent
    assert "cannot carry (value not shown)" in raised.value.reason
    assert secret not in raised.value.reason
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__  # raised from None: no traceback shows the value


def test_a_mock_patched_before_the_hook_is_imported_still_sees_every_call(jobmojito_conn: Any) -> None:
    with mock.patch("requests.Session.request") as request:
        request.return_value.status_code = 200
        request.return_value.headers = {}
        request.return_value.content = b'{"success": true}'
        hook = JobMojitoHook(jobmojito_conn(host="http://127.0.0.1:9/functions/v1"))
        assert hook.set_interview_state(POSITION, status="active") == {"success": True}
    assert request.call_count == 1


class TestTestDoublesStillSeeEveryCall:
    """A user's tests that mock requests keep working: the hook then sends through requests."""

    def test_an_adapter_mounted_on_the_session(self, jobmojito_conn: Any) -> None:
        class CannedAdapter(BaseAdapter):
            def __init__(self) -> None:
                super().__init__()
                self.sent: list[requests.PreparedRequest] = []

            def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
                self.sent.append(request)
                response = requests.Response()
                response.status_code, response._content = 200, b'{"success": true}'
                response.request = request
                return response

            def close(self) -> None:
                pass

        hook = JobMojitoHook(jobmojito_conn(host="http://jobmojito.invalid/functions/v1"))
        adapter = CannedAdapter()
        hook.get_conn().mount("http://", adapter)
        assert hook.set_interview_state(POSITION, status="active") == {"success": True}
        (sent,) = adapter.sent
        assert sent.url == f"http://jobmojito.invalid{SET_STATE}"
        assert sent.body == b'{"position_id":"' + POSITION.encode() + b'","status":"active"}'

    def test_requests_patched_by_a_test(self, jobmojito_conn: Any) -> None:
        canned = requests.Response()
        canned.status_code, canned._content = 200, b'{"success": true}'
        hook = JobMojitoHook(jobmojito_conn(host="http://jobmojito.invalid/functions/v1"))
        with mock.patch.object(requests.Session, "request", return_value=canned) as patched:
            assert hook.set_interview_state(POSITION, status="active") == {"success": True}
        assert patched.call_args.args[:2] == ("POST", f"http://jobmojito.invalid{SET_STATE}")
