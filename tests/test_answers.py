"""Answers that are not what the API sends: huge, dripping, unconfirming, or echoing a secret.

Each test runs a tiny loopback server that answers one way, and drives the hook against it.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoConfigError,
    JobMojitoUnavailableError,
    JobMojitoUnexpectedAnswerError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

POSITION = "7e9a1c3d-5f6b-4c8d-8e0f-2a3b4c5d6e7f"
TOKEN = "opaque-token-the-api-must-never-see-echoed-0123456789"
Answer = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], str]]:
    """Start a server that answers every request with the given function; return its API URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer(self)

            do_GET = do_POST = handle_one  # the names http.server dispatches to

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/functions/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def reply(status: int, body: bytes, **headers: str) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def hook_for(url: str, jobmojito_conn: Any, **kwargs: Any) -> JobMojitoHook:
    return JobMojitoHook(jobmojito_conn(host=url, password=TOKEN), **kwargs)


class TestUnconfirmedChanges:
    @pytest.mark.parametrize(
        ("status", "body", "shown"),
        [
            (200, b'{"error": "Position is locked."}', "{error}: error 'Position is locked.'"),
            (200, b"{}", "{no keys}"),
            (200, b'{"success": false}', "{success}"),
        ],
    )
    def test_a_2xx_that_does_not_confirm_the_change_is_an_error_without_retries(
        self, serve: Any, jobmojito_conn: Any, status: int, body: bytes, shown: str
    ) -> None:
        hook = hook_for(serve(reply(status, body)), jobmojito_conn)
        with pytest.raises(JobMojitoUnexpectedAnswerError, match="without confirming the change") as raised:
            hook.set_interview_state(POSITION, status="archived")
        assert f"(it sent {shown})" in str(raised.value)
        assert "may or may not have been made: check the position" in str(raised.value)
        assert isinstance(raised.value, AirflowFailException)

    def test_a_204_without_a_body_is_an_unexpected_answer_not_a_retry(
        self, serve: Any, jobmojito_conn: Any
    ) -> None:
        hook = hook_for(serve(reply(204, b"")), jobmojito_conn)
        with pytest.raises(
            JobMojitoUnexpectedAnswerError, match=r"answered 204 .* with a body that is not JSON"
        ):
            hook.set_interview_state(POSITION, status="archived")


class TestSecretsInErrorTexts:
    @pytest.mark.parametrize(
        ("status", "error"),
        [(401, JobMojitoAuthError), (422, JobMojitoValidationError), (500, Exception)],
    )
    def test_an_error_text_that_echoes_the_token_is_scrubbed(
        self, serve: Any, jobmojito_conn: Any, status: int, error: type[Exception]
    ) -> None:
        body = b'{"error": "Invalid token ' + TOKEN.encode() + b'", "name": "' + TOKEN.encode() + b'"}'
        hook = hook_for(serve(reply(status, body)), jobmojito_conn)
        with pytest.raises(error) as raised:
            hook.set_interview_state(POSITION, status="archived")
        assert "Invalid token ***" in str(raised.value)
        assert TOKEN not in str(raised.value)
        assert TOKEN not in repr(vars(raised.value))

    def test_an_unconfirming_answer_that_echoes_the_token_is_scrubbed(
        self, serve: Any, jobmojito_conn: Any
    ) -> None:
        hook = hook_for(serve(reply(200, b'{"error": "bad ' + TOKEN.encode() + b'"}')), jobmojito_conn)
        with pytest.raises(JobMojitoUnexpectedAnswerError) as raised:
            hook.set_interview_state(POSITION, status="archived")
        assert TOKEN not in str(raised.value)


class TestAnswersTooLargeOrTooSlow:
    def test_an_answer_that_decompresses_past_the_cap_is_refused_while_it_is_read(
        self, serve: Any, jobmojito_conn: Any
    ) -> None:
        bomb = gzip.compress(b"{" + b" " * (64 * 2**20) + b"}")  # 64 MiB of JSON in about 64 KiB
        assert len(bomb) < 2**20
        hook = hook_for(serve(reply(200, bomb, Content_Encoding="gzip")), jobmojito_conn)
        with pytest.raises(JobMojitoConfigError, match="is over 8 MiB once decoded") as raised:
            hook.list_interviews(limit=1)
        assert isinstance(raised.value, AirflowFailException)

    def test_a_compressed_answer_of_normal_size_is_read(self, serve: Any, jobmojito_conn: Any) -> None:
        body = gzip.compress(b'{"data": [], "pagination": {"total": 0}}')
        hook = hook_for(serve(reply(200, body, Content_Encoding="gzip")), jobmojito_conn)
        assert hook.list_interviews(limit=1) == {"data": [], "pagination": {"total": 0}}

    def test_a_server_that_drips_its_answer_is_cut_off_at_twice_the_timeout(
        self, serve: Any, jobmojito_conn: Any
    ) -> None:
        stop = threading.Event()

        def drip(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            # A byte well before each read's timeout: the socket timeout never fires.
            while not stop.is_set():
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.1)

        hook = hook_for(serve(drip), jobmojito_conn, timeout=0.5, max_retries=0)
        try:
            with pytest.raises(JobMojitoUnavailableError, match=r"still arriving 1 s after it was sent"):
                hook.list_interviews(limit=1)
        finally:
            stop.set()


class TestSignInAnswers:
    @pytest.mark.parametrize("expires_in", [1e300, 10**400, 3600.5])
    def test_a_sign_in_answer_with_a_huge_lifetime_is_believed_for_a_week_at_most(
        self, serve: Any, jobmojito_conn: Any, expires_in: float
    ) -> None:
        import json

        from airflow_provider_jobmojito.auth import SIGN_IN_CACHE

        token = "signed-in-token-0123456789"

        def answer(handler: BaseHTTPRequestHandler) -> None:
            if handler.path.startswith("/auth/v1/token"):
                body = '{"access_token": "%s", "expires_in": %s}' % (token, json.dumps(expires_in))  # noqa: UP031
                reply(200, body.encode())(handler)
            else:
                reply(200, b'{"data": [], "pagination": {"total": 0}}')(handler)

        url = serve(answer)
        hook = JobMojitoHook(jobmojito_conn(host=url, login="ops@example.com", password="pw"))
        assert hook.list_interviews(limit=1)["data"] == []
        cached = SIGN_IN_CACHE.get(SIGN_IN_CACHE.key(hook.settings.supabase_url, "ops@example.com", "pw"))
        assert cached is not None
        assert cached.expires_at.diff().in_days() <= 7
