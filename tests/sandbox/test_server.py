"""The JobMojito sandbox, specified through real HTTP calls on loopback."""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_jobmojito.sandbox import (
    DEFAULT_EMAIL,
    DEFAULT_PASSWORD,
    POSITION_STATUSES,
    SANDBOX_MERCHANT_ID,
    SandboxServer,
    decode_jwt,
    encode_jwt,
)
from tests.timing import frozen_token_clock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    SandboxFactory = Callable[..., SandboxServer]

PID = "3f2a6c1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"
OTHER_PID = "0c9e8d7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
UNKNOWN_PID = "99999999-9999-4999-8999-999999999999"
SET_STATE = "/functions/v1/job-interview-set-state"
GET = "/functions/v1/job-interview-get"
LIST = "/functions/v1/merchant-interview-list"
TOKEN = "/auth/v1/token"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Api:
    """A bearer-authenticated client of one sandbox."""

    def __init__(self, server: SandboxServer, token: str | None) -> None:
        self.server = server
        self.token = token
        self.http = requests.Session()
        if token is not None:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def set_state(self, body: Any) -> requests.Response:
        return self.http.post(self.server.url + SET_STATE, json=body, timeout=10)

    def get(self, position_id: str | None = PID) -> requests.Response:
        params = {} if position_id is None else {"position_id": position_id}
        return self.http.get(self.server.url + GET, params=params, timeout=10)

    def list(self, **params: Any) -> requests.Response:
        return self.http.get(self.server.url + LIST, params=params, timeout=10)


@pytest.fixture
def sandbox(jobmojito_sandbox: SandboxServer) -> SandboxServer:
    jobmojito_sandbox.seed([{"id": PID, "name": "Backend Engineer", "status": "draft"}])
    return jobmojito_sandbox


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[Api]:
    client = Api(sandbox, sandbox.issue_token())
    yield client
    client.http.close()


def sign_in(server: SandboxServer, body: Any, *, query: str = "?grant_type=password", **kw: Any) -> Any:
    return requests.post(server.url + TOKEN + query, json=body, timeout=10, **kw)


# --- Authentication ---------------------------------------------------------------------------


def test_api_call_without_authorization_header_is_401_missing(sandbox: SandboxServer) -> None:
    response = Api(sandbox, None).set_state({"position_id": PID, "status": "active"})
    assert response.status_code == 401
    assert "missing" in response.json()["error"].lower()
    assert sandbox.position(PID)["status"] == "draft"


def test_non_bearer_authorization_is_401_missing(sandbox: SandboxServer) -> None:
    response = requests.get(sandbox.url + LIST, headers={"Authorization": "Basic ZGVtbzpkZW1v"}, timeout=10)
    assert response.status_code == 401
    assert "missing bearer token" in response.json()["error"].lower()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "u",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    } | overrides


def _unsigned_token(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        pytest.param(lambda: "not-a-jwt", "not a compact", id="malformed"),
        pytest.param(lambda: encode_jwt(_claims(), "another-secret"), "signature", id="foreign-signature"),
        pytest.param(lambda: _unsigned_token(_claims()), "algorithm", id="alg-none"),
    ],
)
def test_api_call_with_invalid_token_is_401_invalid_without_echoing_it(
    sandbox: SandboxServer, make_token: Callable[[], str], reason: str
) -> None:
    token = make_token()
    response = Api(sandbox, token).set_state({"position_id": PID, "status": "active"})
    assert response.status_code == 401
    assert response.json()["error"].startswith("Invalid JWT")
    assert reason in response.json()["error"]
    assert token not in response.text
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_token_for_another_audience_is_401(jobmojito_sandbox_factory: SandboxFactory) -> None:
    server = jobmojito_sandbox_factory(jwt_secret="s3cret")
    response = Api(server, encode_jwt(_claims(aud="anon"), "s3cret")).list()
    assert response.status_code == 401
    assert "audience" in response.json()["error"]


def test_expired_token_is_401_expired(sandbox: SandboxServer) -> None:
    response = Api(sandbox, sandbox.issue_token(lifetime=-5)).get()
    assert response.status_code == 401
    assert response.json() == {"error": "JWT expired."}


def test_token_expires_once_its_lifetime_passes(
    jobmojito_sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = frozen_token_clock(monkeypatch)
    server = jobmojito_sandbox_factory(token_lifetime=1)
    session = sign_in(server, {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}).json()
    assert (session["expires_in"], session["expires_at"]) == (1, clock() + 1)
    client = Api(server, session["access_token"])
    assert client.list().status_code == 200
    clock.advance(0.999)
    assert client.list().status_code == 200  # a token already checked once is checked again
    clock.advance(0.001)
    assert client.list().json() == {"error": "JWT expired."}


def test_password_grant_returns_a_supabase_shaped_session_usable_on_the_api(
    jobmojito_sandbox_factory: SandboxFactory,
) -> None:
    server = jobmojito_sandbox_factory(jwt_secret="s3cret", token_lifetime=120)
    response = sign_in(server, {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    session = response.json()
    assert session["token_type"] == "bearer"
    assert session["expires_in"] == 120
    assert session["refresh_token"]
    assert session["user"]["email"] == DEFAULT_EMAIL
    claims = decode_jwt(session["access_token"], "s3cret")
    assert claims["sub"] == session["user"]["id"]
    assert claims["email"] == DEFAULT_EMAIL
    assert claims["role"] == claims["aud"] == "authenticated"
    assert claims["iss"] == f"{server.url}/auth/v1"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["exp"] == session["expires_at"]
    assert Api(server, session["access_token"]).list().status_code == 200


def test_password_grant_accepts_configured_credentials(jobmojito_sandbox_factory: SandboxFactory) -> None:
    server = jobmojito_sandbox_factory(email="ops@example.com", password="hunter2")
    assert sign_in(server, {"email": "ops@example.com", "password": "hunter2"}).status_code == 200
    assert sign_in(server, {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"email": DEFAULT_EMAIL, "password": "wrong"},
        {"email": "someone@else.test", "password": DEFAULT_PASSWORD},
    ],
)
def test_password_grant_with_wrong_credentials_is_400_invalid_grant(
    jobmojito_sandbox: SandboxServer, body: dict[str, str]
) -> None:
    response = sign_in(jobmojito_sandbox, body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "Invalid login credentials"}


@pytest.mark.parametrize("query", ["", "?grant_type=refresh_token", "?grant_type=client_credentials"])
def test_token_endpoint_without_password_grant_type_is_400(
    jobmojito_sandbox: SandboxServer, query: str
) -> None:
    response = sign_in(jobmojito_sandbox, {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}, query=query)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_password_grant_without_credentials_is_400_invalid_request(jobmojito_sandbox: SandboxServer) -> None:
    response = sign_in(jobmojito_sandbox, {"email": DEFAULT_EMAIL})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_anon_key_when_configured_is_required_on_auth_routes_only(
    jobmojito_sandbox_factory: SandboxFactory,
) -> None:
    server = jobmojito_sandbox_factory(anon_key="anon-123")
    credentials = {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}
    for headers in ({}, {"apikey": "wrong"}):
        refused = sign_in(server, credentials, headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {"message": "Invalid API key"}
    accepted = sign_in(server, credentials, headers={"apikey": "anon-123"})
    assert accepted.status_code == 200
    assert Api(server, accepted.json()["access_token"]).list().status_code == 200


def test_without_anon_key_no_apikey_header_is_needed(jobmojito_sandbox: SandboxServer) -> None:
    assert (
        sign_in(jobmojito_sandbox, {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}).status_code == 200
    )


def test_control_api_mints_tokens_including_expired_ones(sandbox: SandboxServer) -> None:
    minted = requests.post(sandbox.url + "/_sandbox/tokens", json={"lifetime": -1}, timeout=10).json()
    assert minted["expires_at"] < time.time()
    assert Api(sandbox, minted["access_token"]).get().json() == {"error": "JWT expired."}
    fresh = requests.post(sandbox.url + "/_sandbox/tokens", timeout=10).json()
    assert Api(sandbox, fresh["access_token"]).get().status_code == 200


def test_tokens_from_another_sandbox_are_refused(
    sandbox: SandboxServer, jobmojito_sandbox_factory: SandboxFactory
) -> None:
    other = jobmojito_sandbox_factory()
    assert Api(sandbox, other.issue_token()).get().status_code == 401


# --- job-interview-set-state: validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "name"),
    [
        pytest.param([PID], "body", id="array-body"),
        pytest.param("active", "body", id="string-body"),
        pytest.param({"status": "active"}, "position_id", id="position-id-missing"),
        pytest.param({"position_id": None, "status": "active"}, "position_id", id="position-id-null"),
        pytest.param({"position_id": 42, "status": "active"}, "position_id", id="position-id-number"),
        pytest.param({"position_id": "", "status": "active"}, "position_id", id="position-id-empty"),
        pytest.param({"position_id": "pos-1", "status": "active"}, "position_id", id="position-id-not-uuid"),
        pytest.param({"position_id": PID, "status": "open"}, "status", id="status-unknown"),
        pytest.param({"position_id": PID, "status": "ACTIVE"}, "status", id="status-wrong-case"),
        pytest.param({"position_id": PID, "status": 1}, "status", id="status-number"),
        pytest.param({"position_id": PID, "is_embedded": "true"}, "is_embedded", id="embedded-string"),
        pytest.param({"position_id": PID, "is_embedded": 1}, "is_embedded", id="embedded-number"),
        pytest.param({"position_id": PID}, "status", id="neither-field"),
        pytest.param({"position_id": PID, "status": None, "is_embedded": None}, "status", id="both-null"),
        pytest.param({"position_id": PID, "status": "active", "force": True}, "force", id="unknown-key"),
    ],
)
def test_set_state_invalid_body_is_422_naming_the_field(api: Api, body: Any, name: str) -> None:
    response = api.set_state(body)
    assert response.status_code == 422
    assert response.json()["name"] == name
    assert response.json()["error"]
    assert api.server.position(PID)["status"] == "draft"


def test_set_state_without_status_or_is_embedded_says_to_provide_one(api: Api) -> None:
    assert api.set_state({"position_id": PID}).json() == {
        "error": "Provide at least one of status or is_embedded.",
        "name": "status",
    }


@pytest.mark.parametrize("raw", [b"", b"{not json", b"null"])
def test_set_state_with_empty_or_broken_json_is_422_body(api: Api, raw: bytes) -> None:
    response = api.http.post(api.server.url + SET_STATE, data=raw, timeout=10)
    assert response.status_code == 422
    assert response.json()["name"] == "body"


def test_set_state_on_unknown_position_is_500_like_the_real_api(api: Api) -> None:
    response = api.set_state({"position_id": UNKNOWN_PID, "status": "active"})
    assert response.status_code == 500
    assert set(response.json()) == {"error"}


# --- job-interview-set-state: effects ---------------------------------------------------------


def test_set_state_changes_status_and_moves_updated_at(api: Api) -> None:
    before = api.server.position(PID)
    response = api.set_state({"position_id": PID, "status": "active"})
    assert response.status_code == 200
    assert response.json() == {"success": True}
    after = api.server.position(PID)
    assert after["status"] == "active"
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]


def test_set_state_accepts_upper_case_uuid(api: Api) -> None:
    assert api.set_state({"position_id": PID.upper(), "status": "archived"}).status_code == 200
    assert api.server.position(PID)["status"] == "archived"


@pytest.mark.parametrize("status", POSITION_STATUSES)
def test_set_state_accepts_every_lifecycle_status(api: Api, status: str) -> None:
    assert api.set_state({"position_id": PID, "status": status}).json() == {"success": True}
    assert api.get().json()["status"] == status


def test_enabling_embedding_twice_returns_the_same_key(api: Api) -> None:
    first = api.set_state({"position_id": PID, "is_embedded": True})
    second = api.set_state({"position_id": PID, "is_embedded": True})
    assert first.status_code == second.status_code == 200
    assert set(first.json()) == {"embed_id", "embed_signing_key"}
    assert first.json() == second.json()
    stored = api.server.position(PID)
    assert (stored["embed_id"], stored["embed_signing_key"]) == tuple(first.json().values())


def test_disabling_embedding_removes_the_key_and_reenabling_makes_a_new_one(api: Api) -> None:
    first = api.set_state({"position_id": PID, "is_embedded": True}).json()
    assert api.set_state({"position_id": PID, "is_embedded": False}).json() == {"success": True}
    assert api.server.position(PID)["embed_id"] is None
    assert api.server.position(PID)["embed_signing_key"] is None
    again = api.set_state({"position_id": PID, "is_embedded": True}).json()
    assert again["embed_id"] != first["embed_id"]
    assert again["embed_signing_key"] != first["embed_signing_key"]


def test_status_and_embedding_in_one_call_are_both_applied(api: Api) -> None:
    response = api.set_state({"position_id": PID, "status": "active", "is_embedded": True})
    assert set(response.json()) == {"embed_id", "embed_signing_key"}
    stored = api.server.position(PID)
    assert stored["status"] == "active"
    assert stored["embed_id"] == response.json()["embed_id"]
    assert api.set_state({"position_id": PID, "status": "archived", "is_embedded": False}).json() == {
        "success": True
    }
    assert api.server.position(PID)["status"] == "archived"
    assert api.server.position(PID)["embed_id"] is None


# --- job-interview-get and merchant-interview-list --------------------------------------------


def test_get_returns_the_interview_definition_without_embed_credentials(api: Api) -> None:
    api.set_state({"position_id": PID, "status": "active", "is_embedded": True})
    response = api.get()
    assert response.status_code == 200
    body = response.json()
    stored = api.server.position(PID)
    assert body["id"] == PID
    expected = {
        "name": "Backend Engineer",
        "status": "active",
        "type": "interview",
        "visibility": "merchant_public",
        "is_multistage": False,
        "merchant_id": SANDBOX_MERCHANT_ID,
        "created_at": stored["created_at"],
        "updated_at": stored["updated_at"],
        "interview_available_till": None,
        "questions": [],
    }
    assert {key: body[key] for key in expected} == expected
    assert not {"embed_id", "embed_signing_key", "is_embedded"} & set(body)


@pytest.mark.parametrize("position_id", [None, "", "abc", "3f2a6c1e8b7d4e5f9a0b1c2d3e4f5a6b"])
def test_get_without_a_valid_position_id_is_422(api: Api, position_id: str | None) -> None:
    response = api.get(position_id)
    assert response.status_code == 422
    assert response.json()["name"] == "position_id"


def test_get_unknown_position_is_404(api: Api) -> None:
    response = api.get(UNKNOWN_PID)
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def _seed_five(server: SandboxServer) -> list[str]:
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]
    server.seed(
        [
            {
                "id": pid,
                "name": f"Role {i}",
                "status": "active" if i % 2 else "draft",
                "updated_at": f"2025-01-0{i + 1}T00:00:00Z",
            }
            for i, pid in enumerate(ids)
        ]
    )
    return ids


def test_list_is_newest_updated_first_with_pagination(jobmojito_sandbox: SandboxServer) -> None:
    ids = _seed_five(jobmojito_sandbox)
    client = Api(jobmojito_sandbox, jobmojito_sandbox.issue_token())
    body = client.list().json()
    assert [row["id"] for row in body["data"]] == ids[::-1]
    assert body["pagination"] == {"total": 5, "limit": 50, "offset": 0, "has_more": False}
    assert client.set_state({"position_id": ids[0], "status": "completed"}).status_code == 200
    assert client.list().json()["data"][0]["id"] == ids[0]
    page = client.list(limit=2, offset=2).json()
    assert len(page["data"]) == 2
    assert page["pagination"] == {"total": 5, "limit": 2, "offset": 2, "has_more": True}
    assert client.list(limit=2, offset=4).json()["pagination"]["has_more"] is False


def test_list_rows_carry_the_contract_fields_and_no_embed_credentials(
    jobmojito_sandbox: SandboxServer,
) -> None:
    jobmojito_sandbox.seed([{"id": PID, "embedded": True}])
    row = Api(jobmojito_sandbox, jobmojito_sandbox.issue_token()).list().json()["data"][0]
    assert {"id", "merchant_id", "name", "type", "status", "visibility", "created_at", "updated_at"} <= set(
        row
    )
    assert not {"embed_id", "embed_signing_key"} & set(row)


def test_list_filters_by_status_type_and_name(jobmojito_sandbox: SandboxServer) -> None:
    ids = _seed_five(jobmojito_sandbox)
    jobmojito_sandbox.seed([{"id": OTHER_PID, "name": "Coach", "type": "coaching"}])
    client = Api(jobmojito_sandbox, jobmojito_sandbox.issue_token())
    assert {row["id"] for row in client.list(status="active").json()["data"]} == {ids[1], ids[3]}
    assert [row["id"] for row in client.list(filter_text="ROLE 2").json()["data"]] == [ids[2]]
    assert [row["id"] for row in client.list(type="coaching").json()["data"]] == [OTHER_PID]
    assert client.list(status="archived").json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"status": "open"}, "status"),
        ({"type": "webinar"}, "type"),
        ({"merchant_id": "acme"}, "merchant_id"),
    ],
)
def test_list_with_invalid_parameter_is_422_naming_it(api: Api, params: dict[str, str], name: str) -> None:
    response = api.list(**params)
    assert response.status_code == 422
    assert response.json()["name"] == name


def test_list_of_another_merchant_is_403(api: Api) -> None:
    assert api.list(merchant_id=UNKNOWN_PID).status_code == 403
    assert api.list(merchant_id=SANDBOX_MERCHANT_ID).status_code == 200


# --- Routing and HTTP mechanics ---------------------------------------------------------------


def test_unknown_path_is_404(api: Api) -> None:
    for path in ("/functions/v1/job-interview-delete", "/nowhere", "/_sandbox/nothing"):
        response = api.http.get(api.server.url + path, timeout=10)
        assert response.status_code == 404
        assert response.json() == {"error": "Not found"}


def test_wrong_method_is_405_with_allow_header(api: Api) -> None:
    response = api.http.get(api.server.url + SET_STATE, timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_api_routes_check_the_token_before_the_route(jobmojito_sandbox: SandboxServer) -> None:
    assert requests.get(jobmojito_sandbox.url + "/functions/v1/nope", timeout=10).status_code == 401


def test_connections_are_kept_alive_unless_the_client_asks_to_close(sandbox: SandboxServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        for _ in range(3):
            connection.request("GET", "/_sandbox/health")
            response = connection.getresponse()
            assert json.loads(response.read()) == {"ok": True}
            assert not response.will_close
        first_socket = connection.sock
        connection.request("GET", "/_sandbox/health", headers={"Connection": "close"})
        response = connection.getresponse()
        assert response.getheader("Connection") == "close"
        assert response.read() == b'{"ok":true}'
        assert first_socket is not None
    finally:
        connection.close()


def test_server_prints_nothing_by_default(sandbox: SandboxServer, capfd: pytest.CaptureFixture[str]) -> None:
    token = sandbox.issue_token()
    Api(sandbox, token).set_state({"position_id": PID, "is_embedded": True})
    Api(sandbox, "bad").get()
    captured = capfd.readouterr()
    assert captured.out == captured.err == ""


def test_server_object_exposes_its_urls_and_stops_idempotently() -> None:
    server = SandboxServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        url = server.url
        assert url == f"http://127.0.0.1:{server.port}"
        assert server.api_url == url + "/functions/v1"
        assert requests.get(url + "/_sandbox/health", timeout=10).json() == {"ok": True}
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_sandbox/health", timeout=2)


# --- Control API ------------------------------------------------------------------------------


def test_control_api_seeds_overwrites_and_reads_positions(jobmojito_sandbox: SandboxServer) -> None:
    url = jobmojito_sandbox.url + "/_sandbox/positions"
    created = requests.post(url, json={"id": PID, "status": "active", "embedded": True}, timeout=10).json()
    row = created["positions"][0]
    assert (row["id"], row["status"], row["merchant_id"]) == (PID, "active", SANDBOX_MERCHANT_ID)
    assert row["embed_id"]
    assert row["embed_signing_key"]
    requests.post(url, json={"positions": [{"id": PID, "name": "Renamed"}, {"id": OTHER_PID}]}, timeout=10)
    everything = requests.get(url, timeout=10).json()["positions"]
    assert {p["id"] for p in everything} == {PID, OTHER_PID}
    one = requests.get(f"{url}/{PID}", timeout=10).json()
    assert (one["name"], one["status"], one["embed_id"]) == ("Renamed", "draft", None)
    assert requests.get(f"{url}/{UNKNOWN_PID}", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("seed", "name"),
    [
        ({"status": "draft"}, "id"),
        ({"id": PID, "status": "open"}, "status"),
        ({"id": PID, "colour": 1}, "colour"),
    ],
)
def test_control_api_rejects_invalid_seeds_with_422(
    jobmojito_sandbox: SandboxServer, seed: dict[str, Any], name: str
) -> None:
    response = requests.post(jobmojito_sandbox.url + "/_sandbox/positions", json=seed, timeout=10)
    assert response.status_code == 422
    assert response.json()["name"] == name
    assert jobmojito_sandbox.positions() == {}


def test_request_log_records_api_calls_with_secrets_redacted(
    jobmojito_sandbox_factory: SandboxFactory,
) -> None:
    server = jobmojito_sandbox_factory(anon_key="anon-123", positions=[{"id": PID}])
    session = sign_in(
        server, {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}, headers={"apikey": "anon-123"}
    ).json()
    embed = Api(server, session["access_token"]).set_state({"position_id": PID, "is_embedded": True}).json()
    requests.get(server.url + "/_sandbox/positions", timeout=10)  # control routes are not logged

    log = requests.get(server.url + "/_sandbox/requests", timeout=10).json()["requests"]
    assert [(e["method"], e["path"], e["status"], e["fault"]) for e in log] == [
        ("POST", TOKEN, 200, None),
        ("POST", SET_STATE, 200, None),
    ]
    sign_in_entry, set_state_entry = log
    assert sign_in_entry["query"] == {"grant_type": "password"}
    assert sign_in_entry["headers"]["apikey"] == "<redacted>"
    assert sign_in_entry["json"] == {"email": DEFAULT_EMAIL, "password": "<redacted>"}
    assert set_state_entry["headers"]["Authorization"] == "Bearer <redacted>"
    assert set_state_entry["json"] == {"position_id": PID, "is_embedded": True}
    assert time.time() - 60 < set_state_entry["at"] <= time.time()
    dumped = json.dumps(log)
    for secret in (session["access_token"], DEFAULT_PASSWORD, "anon-123", embed["embed_signing_key"]):
        assert secret not in dumped
    assert server.requests_log() == log

    assert requests.delete(server.url + "/_sandbox/requests", timeout=10).status_code == 200
    assert server.requests_log() == []


def test_reset_forgets_positions_requests_and_faults_but_keeps_tokens_valid(api: Api) -> None:
    api.set_state({"position_id": PID, "status": "active"})
    api.server.add_fault("status", status=503)
    assert requests.post(api.server.url + "/_sandbox/reset", timeout=10).json() == {"ok": True}
    assert api.server.positions() == {}
    assert api.server.requests_log() == []
    assert api.server.faults() == []
    assert api.list().status_code == 200


def test_health(jobmojito_sandbox: SandboxServer) -> None:
    assert requests.get(jobmojito_sandbox.url + "/_sandbox/health", timeout=10).json() == {"ok": True}


# --- Faults -----------------------------------------------------------------------------------


def add_fault(server: SandboxServer, spec: dict[str, Any]) -> requests.Response:
    return requests.post(server.url + "/_sandbox/faults", json=spec, timeout=10)


def test_status_fault_answers_instead_of_the_api_and_changes_nothing(api: Api) -> None:
    assert add_fault(api.server, {"kind": "status", "status": 503, "retry_after": "2"}).status_code == 200
    response = api.set_state({"position_id": PID, "status": "active"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "error" in response.json()
    assert api.server.position(PID)["status"] == "draft"
    assert api.server.requests_log()[-1]["fault"] == "status"
    assert api.server.requests_log()[-1]["status"] == 503
    assert api.set_state({"position_id": PID, "status": "active"}).status_code == 200


def test_status_fault_can_carry_an_http_date_and_a_custom_body(api: Api) -> None:
    date = "Wed, 21 Oct 2037 07:28:00 GMT"
    api.server.add_fault("status", status=429, retry_after=date, body={"error": "slow down"})
    api.server.add_fault("status", status=502, body="<html>Bad gateway</html>")
    throttled = api.get()
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, date)
    assert throttled.json() == {"error": "slow down"}
    gateway = api.get()
    assert gateway.status_code == 502
    assert gateway.headers["Content-Type"].startswith("text/plain")
    assert gateway.text == "<html>Bad gateway</html>"


def test_answer_fault_answers_200_with_its_body_instead_of_the_api(api: Api) -> None:
    # An API that misbehaves without an error (e.g. ignores a filter): 200 and a canned body.
    canned = {"data": [{"id": PID, "status": "active"}], "pagination": {"has_more": False}}
    api.server.add_fault("answer", body=canned, path=LIST)
    answered = api.list()
    assert (answered.status_code, answered.json()) == (200, canned)
    assert api.server.requests_log()[-1]["fault"] == "answer"
    assert api.list().json() != canned  # one unit: the API answers again
    assert add_fault(api.server, {"kind": "answer"}).status_code == 422  # no body, no answer
    assert add_fault(api.server, {"kind": "answer", "body": {}, "status": 500}).status_code == 422


def test_faults_are_consumed_in_order_one_unit_per_request(api: Api) -> None:
    api.server.add_fault("status", status=503, count=2)
    api.server.add_fault("status", status=429)
    assert [api.get().status_code for _ in range(4)] == [503, 503, 429, 200]
    assert api.server.faults() == []


def test_fault_with_a_path_only_hits_that_path(api: Api) -> None:
    api.server.add_fault("status", status=504, path=SET_STATE)
    assert api.get().status_code == 200
    assert api.list().status_code == 200
    assert api.set_state({"position_id": PID, "status": "active"}).status_code == 504
    assert api.set_state({"position_id": PID, "status": "active"}).status_code == 200


def test_fault_with_a_query_only_hits_requests_carrying_those_parameters(api: Api) -> None:
    api.server.add_fault("status", status=503, path=LIST, query={"offset": 2})
    assert api.list(limit=2).status_code == 200
    assert api.list(limit=2, offset=1).status_code == 200
    assert api.list(limit=2, offset=2, status="draft").status_code == 503  # other parameters may come
    assert api.list(limit=2, offset=2).status_code == 200  # one unit
    assert api.server.requests_log()[-2]["fault"] == "status"


def test_change_fault_changes_a_position_then_answers_normally(api: Api) -> None:
    api.server.add_fault("change", path=GET, position_id=PID, position_status="completed")
    assert api.server.faults() == [
        {"kind": "change", "count": 1, "path": GET, "position_id": PID, "position_status": "completed"}
    ]
    before = api.server.position(PID)["updated_at"]
    answered = api.get()
    # The change was made before the request was answered: the answer shows it.
    assert (answered.status_code, answered.json()["status"]) == (200, "completed")
    assert answered.json()["updated_at"] > before
    assert api.server.requests_log()[-1]["fault"] == "change"
    assert api.server.faults() == []


def test_change_fault_for_a_position_gone_since_still_answers(api: Api, sandbox: SandboxServer) -> None:
    api.server.add_fault("change", path=GET, position_id=OTHER_PID, position_status="completed")
    assert api.get().status_code == 200
    assert api.server.position(PID)["status"] == "draft"


def test_faults_apply_to_the_auth_route_but_never_to_control_routes(jobmojito_sandbox: SandboxServer) -> None:
    jobmojito_sandbox.add_fault("status", status=503, count=2)
    assert requests.get(jobmojito_sandbox.url + "/_sandbox/health", timeout=10).status_code == 200
    credentials = {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}
    assert sign_in(jobmojito_sandbox, credentials).status_code == 503
    assert len(jobmojito_sandbox.faults()) == 1


def test_delay_fault_answers_normally_after_waiting(api: Api) -> None:
    api.server.add_fault("delay", seconds=0.3)
    started = time.monotonic()
    response = api.set_state({"position_id": PID, "status": "active"})
    assert time.monotonic() - started >= 0.3
    assert response.json() == {"success": True}
    assert api.server.position(PID)["status"] == "active"
    assert api.server.requests_log()[-1]["fault"] == "delay"


def test_drop_fault_closes_the_connection_without_answering(api: Api) -> None:
    api.server.add_fault("drop")
    with pytest.raises(requests.ConnectionError):
        requests.post(
            api.server.url + SET_STATE,
            json={"position_id": PID, "status": "active"},
            headers={"Authorization": f"Bearer {api.token}"},
            timeout=10,
        )
    assert api.server.position(PID)["status"] == "draft"
    entry = api.server.requests_log()[-1]
    assert (entry["fault"], entry["status"]) == ("drop", None)
    assert api.set_state({"position_id": PID, "status": "active"}).status_code == 200


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "status"}, "status"),
        ({"kind": "status", "status": 200}, "status"),
        ({"kind": "status", "status": 503, "count": 0}, "count"),
        ({"kind": "delay"}, "seconds"),
        ({"kind": "delay", "seconds": -1}, "seconds"),
        ({"kind": "drop", "path": "functions/v1"}, "path"),
        ({"kind": "drop", "status": 503}, "status"),
        ({"kind": "drop", "query": {"offset": True}}, "query"),
        ({"kind": "drop", "query": ["offset"]}, "query"),
        ({"kind": "change", "position_status": "archived"}, "position_id"),
        ({"kind": "change", "position_id": PID, "position_status": "closed"}, "position_status"),
        ({"kind": "change", "position_id": PID, "position_status": "archived", "body": {}}, "body"),
        ({"kind": "status", "status": 503, "position_id": PID}, "position_id"),
    ],
)
def test_invalid_fault_is_422_and_not_queued(jobmojito_sandbox: SandboxServer, spec: Any, name: str) -> None:
    response = add_fault(jobmojito_sandbox, spec)
    assert response.status_code == 422
    assert response.json()["name"] == name
    assert jobmojito_sandbox.faults() == []


def test_faults_can_be_listed_and_cleared(jobmojito_sandbox: SandboxServer) -> None:
    add_fault(jobmojito_sandbox, {"kind": "drop", "count": 3})
    url = jobmojito_sandbox.url + "/_sandbox/faults"
    assert requests.get(url, timeout=10).json() == {"faults": [{"kind": "drop", "count": 3}]}
    assert requests.delete(url, timeout=10).status_code == 200
    assert jobmojito_sandbox.faults() == []


# --- Persistence ------------------------------------------------------------------------------


def test_state_file_round_trips_positions_and_embed_keys(tmp_path: Path) -> None:
    state_file = tmp_path / "state" / "sandbox.json"
    with SandboxServer(state_file=state_file, positions=[{"id": PID}, {"id": OTHER_PID}]) as first:
        client = Api(first, first.issue_token())
        embed = client.set_state({"position_id": PID, "status": "active", "is_embedded": True}).json()
        saved = first.positions()
    assert json.loads(state_file.read_text())["positions"][0]["embed_id"] == embed["embed_id"]
    assert [p.name for p in state_file.parent.iterdir()] == ["sandbox.json"]  # no temp files left

    with SandboxServer(state_file=state_file) as second:
        assert second.positions() == saved
        client = Api(second, second.issue_token())
        assert client.set_state({"position_id": PID, "is_embedded": True}).json() == embed
        client.set_state({"position_id": OTHER_PID, "status": "archived"})
    assert SandboxServer(state_file=state_file).position(OTHER_PID)["status"] == "archived"


# --- Command line -----------------------------------------------------------------------------


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the sandbox printed nothing in time"
    return process.stdout.readline()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_serves_the_seeded_positions_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"positions": [{"id": PID, "name": "From file", "status": "active"}]}))
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    }
    command = [sys.executable, "-m", "airflow_provider_jobmojito.sandbox", "--port", "0", "--seed", str(seed)]
    process = subprocess.Popen(
        [*command, "--position", f"{OTHER_PID}:archived"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = _read_line(process, timeout=15)
        assert line.startswith("JobMojito sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        session = requests.post(
            f"{url}/auth/v1/token?grant_type=password",
            json={"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD},
            timeout=10,
        ).json()
        listed = requests.get(
            f"{url}/functions/v1/merchant-interview-list",
            headers={"Authorization": f"Bearer {session['access_token']}"},
            timeout=10,
        ).json()
        assert {(row["id"], row["status"]) for row in listed["data"]} == {
            (PID, "active"),
            (OTHER_PID, "archived"),
        }
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert session["access_token"] not in process.communicate()[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_an_invalid_seed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_provider_jobmojito.sandbox.__main__ import main

    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"positions": [{"id": "nope"}]}))
    assert main(["--port", "0", "--seed", str(seed)]) == 2
    assert "id" in capsys.readouterr().err


# --- Concurrency ------------------------------------------------------------------------------


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            target(index)
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_set_state_calls_lose_and_duplicate_nothing(jobmojito_sandbox: SandboxServer) -> None:
    threads, calls = 8, 100
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(threads)]
    jobmojito_sandbox.seed([{"id": pid} for pid in ids])
    token = jobmojito_sandbox.issue_token()

    def worker(index: int) -> None:
        client = Api(jobmojito_sandbox, token)
        for call in range(calls):
            status = POSITION_STATUSES[(index + call) % len(POSITION_STATUSES)]
            body = {"position_id": ids[index], "status": status, "is_embedded": call % 2 == 0}
            assert client.set_state(body).status_code == 200

    _run_threads(threads, worker)
    final = jobmojito_sandbox.positions()
    for index, pid in enumerate(ids):
        assert final[pid]["status"] == POSITION_STATUSES[(index + calls - 1) % len(POSITION_STATUSES)]
        assert final[pid]["embed_id"] is None  # the last call (odd) disabled embedding
    log = jobmojito_sandbox.requests_log()
    assert len(log) == threads * calls
    assert {e["status"] for e in log} == {200}


def test_concurrent_embed_requests_on_one_position_share_one_key(sandbox: SandboxServer) -> None:
    token = sandbox.issue_token()
    keys: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def worker(_index: int) -> None:
        client = Api(sandbox, token)
        for _ in range(25):
            body = client.set_state({"position_id": PID, "is_embedded": True}).json()
            with lock:
                keys.add((body["embed_id"], body["embed_signing_key"]))

    _run_threads(8, worker)
    assert len(keys) == 1


def test_concurrent_requests_consume_each_fault_unit_exactly_once(api: Api) -> None:
    api.server.add_fault("status", status=503, count=10)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(_index: int) -> None:
        client = Api(api.server, api.token)
        for _ in range(20):
            code = client.get().status_code
            with lock:
                statuses.append(code)

    _run_threads(8, worker)
    assert statuses.count(503) == 10
    assert statuses.count(200) == 150
