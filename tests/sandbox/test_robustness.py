"""Bodies and parameters the sandbox cannot parse: always an answer, never a dropped connection.

Sent with http.client (or a raw socket), so nothing on the client side repairs or refuses them.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_jobmojito.sandbox import SandboxServer

PID = "3f2a6c1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"
SET_STATE = "/functions/v1/job-interview-set-state"
LIST = "/functions/v1/merchant-interview-list"
TOKEN = "/auth/v1/token?grant_type=password"

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
HUGE_INT = (
    b'{"position_id": "' + PID.encode() + b'", "status": "active", "is_embedded": ' + b"9" * 5000 + b"}"
)
UNPARSEABLE_BODIES = {
    "invalid-json": b'{"position_id": ',
    "deeply-nested-array": DEEP,
    "deeply-nested-object": DEEP_OBJECT,
    "not-utf8": b'{"position_id": "\xff\xfe\xfa"}',
    "latin1-text": '{"status": "pr\u00e9paring"}'.encode("latin-1"),
    "huge-integer": HUGE_INT,
    "nan": b'{"position_id": NaN}',
    "infinity": b'{"position_id": "' + PID.encode() + b'", "status": "active", "is_embedded": -Infinity}',
    "form-encoded": b"position_id=" + PID.encode() + b"&status=active",
    "multipart": b'--x\r\nContent-Disposition: form-data; name="status"\r\n\r\nactive\r\n--x--\r\n',
}
#: The content type each body above claims (the form bodies claim their own).
CONTENT_TYPES = {
    "form-encoded": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data; boundary=x",
}


def _request(
    server: SandboxServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request on a fresh connection; the status, headers and JSON body of the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw)
    finally:
        connection.close()


@pytest.fixture
def seeded(jobmojito_sandbox: SandboxServer) -> SandboxServer:
    jobmojito_sandbox.seed([{"id": PID, "status": "draft"}])
    return jobmojito_sandbox


@pytest.mark.parametrize("kind", sorted(UNPARSEABLE_BODIES))
def test_unparseable_set_state_body_is_422_in_the_error_shape(seeded: SandboxServer, kind: str) -> None:
    headers = {
        "Authorization": f"Bearer {seeded.issue_token()}",
        "Content-Type": CONTENT_TYPES.get(kind, "application/json"),
    }
    status, _, body = _request(seeded, "POST", SET_STATE, UNPARSEABLE_BODIES[kind], headers)
    assert status == 422
    assert body == {"error": "Body must be a JSON object.", "name": "body"}
    assert seeded.position(PID)["status"] == "draft"
    # The request log shows the request, without its body.
    entry = seeded.requests_log()[-1]
    assert (entry["status"], entry["json"]) == (422, None)


@pytest.mark.parametrize("kind", sorted(UNPARSEABLE_BODIES))
def test_unparseable_body_without_a_token_is_still_401_first(seeded: SandboxServer, kind: str) -> None:
    headers = {"Content-Type": CONTENT_TYPES.get(kind, "application/json")}
    status, response_headers, body = _request(seeded, "POST", SET_STATE, UNPARSEABLE_BODIES[kind], headers)
    assert status == 401
    assert "missing" in body["error"].lower()
    assert "invalid_token" in response_headers["WWW-Authenticate"]


@pytest.mark.parametrize("kind", sorted(UNPARSEABLE_BODIES))
def test_unparseable_sign_in_body_is_400_invalid_request(jobmojito_sandbox: SandboxServer, kind: str) -> None:
    headers = {"Content-Type": CONTENT_TYPES.get(kind, "application/json")}
    status, _, body = _request(jobmojito_sandbox, "POST", TOKEN, UNPARSEABLE_BODIES[kind], headers)
    assert status == 400
    assert body["error"] == "invalid_request"


@pytest.mark.parametrize("kind", ["deeply-nested-array", "invalid-json", "not-utf8"])
def test_unparseable_control_body_is_422(jobmojito_sandbox: SandboxServer, kind: str) -> None:
    status, _, body = _request(jobmojito_sandbox, "POST", "/_sandbox/positions", UNPARSEABLE_BODIES[kind])
    assert status == 422
    assert body["name"] == "body"


def test_a_json_body_is_read_whatever_content_type_it_claims(seeded: SandboxServer) -> None:
    # Like the Edge Function behind the real API (it reads the body with req.json()).
    headers = {"Authorization": f"Bearer {seeded.issue_token()}", "Content-Type": "text/plain"}
    body = json.dumps({"position_id": PID, "status": "active"}).encode()
    assert _request(seeded, "POST", SET_STATE, body, headers)[:1] == (200,)
    assert seeded.position(PID)["status"] == "active"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("limit=" + "9" * 5000, id="limit-5000-digits"),
        pytest.param("limit=-" + "9" * 5000, id="negative-limit-5000-digits"),
        pytest.param("offset=" + "1" * 5000, id="offset-5000-digits"),
        pytest.param("limit=%D9%A1%D9%A0", id="arabic-indic-digits"),  # int() would take them
        pytest.param("limit=10%0A", id="trailing-newline"),
        pytest.param("limit=", id="empty"),
        pytest.param("limit=1e3", id="exponent"),
    ],
)
def test_unusable_integer_parameter_is_422(seeded: SandboxServer, query: str) -> None:
    headers = {"Authorization": f"Bearer {seeded.issue_token()}"}
    status, _, body = _request(seeded, "GET", f"{LIST}?{query}", headers=headers)
    assert status == 422
    assert body["name"] in ("limit", "offset")


def test_raw_socket_deeply_nested_body_is_answered_and_the_connection_kept(
    seeded: SandboxServer,
) -> None:
    token = seeded.issue_token()
    head = (
        f"POST {SET_STATE} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(DEEP)}\r\n\r\n"
    ).encode()
    follow_up = b"GET /_sandbox/health HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", seeded.port), timeout=30) as sock:
        sock.sendall(head + DEEP + follow_up)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    answers = received.split(b"HTTP/1.1 ")[1:]
    assert [answer.split(b" ", 1)[0] for answer in answers] == [b"422", b"200"]
    assert b'"name":"body"' in answers[0]


def test_a_sandbox_bug_is_answered_500_not_dropped(
    seeded: SandboxServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(_request: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(seeded.app, "handle", broken)
    status, _, body = _request(seeded, "GET", LIST)
    assert (status, body) == (500, {"error": "Internal sandbox error."})
    assert "RuntimeError: a bug" in capfd.readouterr().err


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "CONNECT", "PROPFIND", "BREW"])
def test_a_method_no_route_takes_is_405_with_the_routes_allow_header(
    seeded: SandboxServer, method: str
) -> None:
    """As for PUT on a GET route: the method is known to HTTP or not, the answer is the route's."""
    headers = {"Authorization": f"Bearer {seeded.issue_token()}"}
    for path, allowed in ((LIST, "GET"), (SET_STATE, "POST"), ("/_sandbox/positions", "GET, POST")):
        status, response_headers, body = _request(seeded, method, path, headers=headers)
        assert (status, response_headers["Allow"], body) == (405, allowed, {"error": "Method not allowed"})
    status, _, body = _request(seeded, method, "/nowhere", headers=headers)
    assert (status, body) == (404, {"error": "Not found"})


def test_a_method_no_route_takes_is_still_401_first_without_a_token(seeded: SandboxServer) -> None:
    status, response_headers, _ = _request(seeded, "TRACE", LIST)
    assert status == 401
    assert "invalid_token" in response_headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        pytest.param("limit=1000000000000000000", 422, "between 1 and 1000", id="limit-10**18"),
        pytest.param("offset=1000000000000000000", 200, None, id="offset-10**18"),
        pytest.param("offset=9223372036854775807", 200, None, id="offset-bigint-max"),
        pytest.param(
            "offset=9223372036854775808", 422, "between 0 and 9223372036854775807", id="offset-over-bigint"
        ),
        pytest.param(
            "offset=10000000000000000000", 422, "between 0 and 9223372036854775807", id="offset-20-digits"
        ),
    ],
)
def test_an_integer_parameter_of_10_to_the_18_and_up_is_judged_by_its_real_bounds(
    seeded: SandboxServer, query: str, status: int, message: str | None
) -> None:
    """An offset is only bounded by PostgreSQL's bigint: a 19-digit offset within it is an empty
    page, not an "at least 0" refusal of a positive number."""
    headers = {"Authorization": f"Bearer {seeded.issue_token()}"}
    answered, _, body = _request(seeded, "GET", f"{LIST}?{query}", headers=headers)
    assert answered == status
    if message is None:
        assert body["data"] == []
        assert body["pagination"]["offset"] == int(query.partition("=")[2])
    else:
        assert body == {"error": f"Must be an integer {message}.", "name": query.partition("=")[0]}
