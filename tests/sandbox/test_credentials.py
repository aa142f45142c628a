"""The sandbox's credentials changing under a client: sessions signed out, a password changed.

What a user does when rotating credentials, over real HTTP on loopback: the control API and its
Python mirror on :class:`SandboxServer`.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_jobmojito.sandbox import DEFAULT_EMAIL, DEFAULT_PASSWORD, SandboxServer, TokenError

LIST = "/functions/v1/merchant-interview-list"
SIGN_IN = "/auth/v1/token?grant_type=password"
REVOKE = "/_sandbox/tokens/revoke"
PASSWORD = "/_sandbox/password"


def listed(server: SandboxServer, token: str) -> requests.Response:
    return requests.get(server.url + LIST, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def sign_in(server: SandboxServer, password: str) -> requests.Response:
    return requests.post(
        server.url + SIGN_IN, json={"email": DEFAULT_EMAIL, "password": password}, timeout=10
    )


def test_a_revoked_token_is_refused_and_the_others_stay_valid(jobmojito_sandbox: SandboxServer) -> None:
    revoked, kept = jobmojito_sandbox.issue_token(), jobmojito_sandbox.issue_token()
    assert listed(jobmojito_sandbox, revoked).status_code == 200  # checked (and cached) before

    answer = requests.post(jobmojito_sandbox.url + REVOKE, json={"token": revoked}, timeout=10)

    assert (answer.status_code, answer.json()) == (200, {"revoked": 1})
    refused = listed(jobmojito_sandbox, revoked)
    assert refused.status_code == 401
    assert refused.json() == {"error": "Invalid JWT: its session was signed out."}
    assert revoked not in refused.text
    assert listed(jobmojito_sandbox, kept).status_code == 200


def test_revoking_a_users_sessions_signs_out_every_token_issued_so_far_not_later_ones(
    jobmojito_sandbox: SandboxServer,
) -> None:
    minted = jobmojito_sandbox.issue_token()
    signed_in = sign_in(jobmojito_sandbox, DEFAULT_PASSWORD).json()["access_token"]
    someone_else = jobmojito_sandbox.issue_token(email="other@example.com")

    assert jobmojito_sandbox.revoke_sessions() == 2

    assert [listed(jobmojito_sandbox, t).status_code for t in (minted, signed_in)] == [401, 401]
    assert listed(jobmojito_sandbox, someone_else).status_code == 200
    assert listed(jobmojito_sandbox, jobmojito_sandbox.issue_token()).status_code == 200
    answer = requests.post(jobmojito_sandbox.url + REVOKE, json={"email": "other@example.com"}, timeout=10)
    assert answer.json() == {"revoked": 1}
    assert listed(jobmojito_sandbox, someone_else).status_code == 401


def test_the_python_mirror_revokes_one_token(jobmojito_sandbox: SandboxServer) -> None:
    token = jobmojito_sandbox.issue_token()
    jobmojito_sandbox.revoke_token(token)
    assert listed(jobmojito_sandbox, token).status_code == 401


def test_a_token_the_sandbox_did_not_sign_cannot_be_revoked(
    jobmojito_sandbox: SandboxServer, jobmojito_sandbox_factory: Any
) -> None:
    foreign = jobmojito_sandbox_factory().issue_token()
    answer = requests.post(jobmojito_sandbox.url + REVOKE, json={"token": foreign}, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["name"] == "token"
    assert foreign not in answer.text
    with pytest.raises(TokenError):
        jobmojito_sandbox.revoke_token(foreign)


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "body"),
        ({"token": "t", "email": "e@example.com"}, "body"),
        ({"session": "s"}, "body"),
        ([{"token": "t"}], "body"),
        ({"token": ""}, "token"),
        ({"email": 7}, "email"),
    ],
    ids=["empty", "both", "unknown", "a-list", "empty-token", "not-a-string"],
)
def test_a_revoke_request_names_what_is_wrong(jobmojito_sandbox: SandboxServer, body: Any, name: str) -> None:
    answer = requests.post(jobmojito_sandbox.url + REVOKE, json=body, timeout=10)
    assert (answer.status_code, answer.json()["name"]) == (422, name)


def test_a_changed_password_is_the_only_one_the_sign_in_accepts_and_tokens_outlive_it(
    jobmojito_sandbox: SandboxServer,
) -> None:
    before = sign_in(jobmojito_sandbox, DEFAULT_PASSWORD).json()["access_token"]

    answer = requests.post(jobmojito_sandbox.url + PASSWORD, json={"password": "rotated pw 2"}, timeout=10)

    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    refused = sign_in(jobmojito_sandbox, DEFAULT_PASSWORD)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert sign_in(jobmojito_sandbox, "rotated pw 2").status_code == 200
    assert listed(jobmojito_sandbox, before).status_code == 200  # until revoked, or expired
    jobmojito_sandbox.change_password("rotated pw 3")
    assert sign_in(jobmojito_sandbox, "rotated pw 2").status_code == 400
    assert sign_in(jobmojito_sandbox, "rotated pw 3").status_code == 200
    assert jobmojito_sandbox.sign_ins() == {"total": 5, "succeeded": 3, "failed": 2, "refused": 0}


@pytest.mark.parametrize(
    "body", [{}, {"password": ""}, {"password": 1}, {"password": "p", "email": "e"}, ["p"]]
)
def test_a_password_change_without_one_password_is_422_and_changes_nothing(
    jobmojito_sandbox: SandboxServer, body: Any
) -> None:
    answer = requests.post(jobmojito_sandbox.url + PASSWORD, json=body, timeout=10)
    assert answer.status_code == 422
    assert sign_in(jobmojito_sandbox, DEFAULT_PASSWORD).status_code == 200
    with pytest.raises(ValueError, match="must not be empty"):
        jobmojito_sandbox.change_password("")


def test_the_control_routes_of_credentials_are_not_in_the_request_log(
    jobmojito_sandbox: SandboxServer,
) -> None:
    requests.post(jobmojito_sandbox.url + PASSWORD, json={"password": "never logged"}, timeout=10)
    requests.post(jobmojito_sandbox.url + REVOKE, json={"email": DEFAULT_EMAIL}, timeout=10)
    assert jobmojito_sandbox.requests_log() == []


def test_the_sessions_it_keeps_are_only_those_a_live_token_may_present() -> None:
    from airflow_provider_jobmojito.sandbox.tokens import TokenAuthority

    authority = TokenAuthority()
    for _ in range(1000):  # a long-running sandbox signing in again and again
        authority.revoke(authority.issue(DEFAULT_EMAIL, lifetime=0).access_token)
    live = authority.issue(DEFAULT_EMAIL)

    assert authority.revoke_user(DEFAULT_EMAIL) == 1  # the expired sessions were let go
    with pytest.raises(TokenError, match="signed out"):
        authority.verify(f"Bearer {live.access_token}")


def test_a_reset_forgets_revocations_as_it_forgets_positions(jobmojito_sandbox: SandboxServer) -> None:
    token = jobmojito_sandbox.issue_token()
    jobmojito_sandbox.revoke_token(token)
    assert listed(jobmojito_sandbox, token).status_code == 401

    jobmojito_sandbox.reset()

    assert listed(jobmojito_sandbox, token).status_code == 200
