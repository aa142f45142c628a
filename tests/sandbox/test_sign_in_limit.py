"""Supabase's rate limit on the password grant, and the sandbox's count of sign-ins, over HTTP."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_jobmojito.sandbox import (
    DEFAULT_EMAIL,
    DEFAULT_PASSWORD,
    OVER_RATE_LIMIT_BODY,
    ManualClock,
    SandboxServer,
    ValidationError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    SandboxFactory = Callable[..., SandboxServer]

GOOD = {"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}
BAD = {"email": DEFAULT_EMAIL, "password": "wrong"}


def sign_in(
    server: SandboxServer, body: Any = GOOD, query: str = "?grant_type=password"
) -> requests.Response:
    return requests.post(f"{server.url}/auth/v1/token{query}", json=body, timeout=10)


def control(server: SandboxServer, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{server.url}/_sandbox/{path}", json=body, timeout=10)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(jobmojito_sandbox_factory: SandboxFactory, clock: ManualClock) -> SandboxServer:
    return jobmojito_sandbox_factory(clock=clock)


def test_the_limit_is_on_by_default_with_supabases_numbers(jobmojito_sandbox: SandboxServer) -> None:
    settings = {"enabled": True, "capacity": 30, "refill_per_second": 0.5}
    assert jobmojito_sandbox.configure_sign_in_limit() == settings
    assert control(jobmojito_sandbox, "GET", "sign-in-limit").json() == settings


def test_the_31st_sign_in_in_a_burst_is_429_over_request_rate_limit(server: SandboxServer) -> None:
    statuses = [sign_in(server, GOOD if i % 2 else BAD).status_code for i in range(30)]
    assert statuses == [400, 200] * 15  # wrong passwords use up the bucket too
    refused = sign_in(server)
    assert refused.status_code == 429
    assert (
        refused.json()
        == OVER_RATE_LIMIT_BODY
        == {
            "code": 429,
            "error_code": "over_request_rate_limit",
            "msg": "Request rate limit reached",
        }
    )
    assert "Retry-After" not in refused.headers  # GoTrue sends none
    assert server.sign_ins() == {"total": 31, "succeeded": 15, "failed": 15, "refused": 1}
    assert control(server, "GET", "sign-ins").json() == server.sign_ins()


def test_the_bucket_refills_one_request_per_two_seconds(server: SandboxServer, clock: ManualClock) -> None:
    for _ in range(30):
        assert sign_in(server).status_code == 200
    assert sign_in(server).status_code == 429
    clock.advance(1.9)
    assert sign_in(server).status_code == 429
    clock.advance(0.1)
    assert sign_in(server).status_code == 200
    assert sign_in(server).status_code == 429
    clock.advance(3600)  # a long pause refills up to the capacity, not beyond
    assert [sign_in(server).status_code for _ in range(31)] == [200] * 30 + [429]


def test_the_limit_applies_before_the_body_is_read(server: SandboxServer) -> None:
    server.configure_sign_in_limit(capacity=1, refill_per_second=0)
    assert sign_in(server, {"email": "x"}).status_code == 400
    assert sign_in(server, "not an object").status_code == 429
    assert server.sign_ins() == {"total": 2, "succeeded": 0, "failed": 1, "refused": 1}


def test_other_grant_types_and_missing_api_keys_are_neither_limited_nor_counted(
    jobmojito_sandbox_factory: SandboxFactory,
) -> None:
    server = jobmojito_sandbox_factory(anon_key="anon", sign_in_capacity=1)
    url = f"{server.url}/auth/v1/token"
    other_grant = requests.post(
        f"{url}?grant_type=refresh_token", json={}, headers={"apikey": "anon"}, timeout=10
    )
    assert other_grant.status_code == 400
    assert sign_in(server).status_code == 401  # no apikey: refused at the gateway
    assert server.sign_ins()["total"] == 0
    ok = requests.post(f"{url}?grant_type=password", json=GOOD, headers={"apikey": "anon"}, timeout=10)
    assert ok.status_code == 200
    assert server.sign_ins() == {"total": 1, "succeeded": 1, "failed": 0, "refused": 0}


def test_faults_on_the_auth_route_are_neither_limited_nor_counted(server: SandboxServer) -> None:
    server.configure_sign_in_limit(capacity=1)
    server.add_fault("status", status=503, path="/auth/v1/token")
    assert sign_in(server).status_code == 503
    assert sign_in(server).status_code == 200
    assert server.sign_ins()["total"] == 1


def test_switched_off_at_construction_it_still_counts(jobmojito_sandbox_factory: SandboxFactory) -> None:
    server = jobmojito_sandbox_factory(sign_in_limit=False)
    assert all(sign_in(server).status_code == 200 for _ in range(40))
    assert server.sign_ins() == {"total": 40, "succeeded": 40, "failed": 0, "refused": 0}


def test_the_control_api_switches_and_tunes_the_limit_at_run_time(server: SandboxServer) -> None:
    response = control(server, "POST", "sign-in-limit", {"capacity": 2})
    assert response.json() == {"enabled": True, "capacity": 2, "refill_per_second": 0.5}
    assert [sign_in(server).status_code for _ in range(3)] == [200, 200, 429]
    assert control(server, "POST", "sign-in-limit", {"enabled": False}).json()["enabled"] is False
    assert sign_in(server).status_code == 200
    # Switching it back on starts every bucket full.
    assert server.configure_sign_in_limit(True) == {"enabled": True, "capacity": 2, "refill_per_second": 0.5}
    assert [sign_in(server).status_code for _ in range(3)] == [200, 200, 429]
    assert server.sign_ins() == {"total": 7, "succeeded": 5, "failed": 0, "refused": 2}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 2.5}, "capacity"),
        ({"refill_per_second": -1}, "refill_per_second"),
        ({"refill_per_second": True}, "refill_per_second"),
        ({"burst": 3}, "burst"),
        ([], "body"),
    ],
)
def test_invalid_limit_settings_are_422_and_change_nothing(
    server: SandboxServer, body: Any, name: str
) -> None:
    response = control(server, "POST", "sign-in-limit", body)
    assert (response.status_code, response.json()["name"]) == (422, name)
    assert server.configure_sign_in_limit() == {"enabled": True, "capacity": 30, "refill_per_second": 0.5}


def test_invalid_limit_settings_from_python_raise(server: SandboxServer) -> None:
    with pytest.raises(ValidationError):
        server.configure_sign_in_limit(capacity=0)


def test_counts_can_be_cleared_which_refills_the_buckets(server: SandboxServer) -> None:
    server.configure_sign_in_limit(capacity=1, refill_per_second=0)
    assert [sign_in(server).status_code for _ in range(2)] == [200, 429]
    assert control(server, "DELETE", "sign-ins").json() == {"ok": True}
    assert server.sign_ins() == {"total": 0, "succeeded": 0, "failed": 0, "refused": 0}
    assert sign_in(server).status_code == 200
    server.clear_sign_ins()
    assert server.sign_ins()["total"] == 0
    assert sign_in(server).status_code == 200


def test_reset_clears_counts_and_buckets_but_keeps_the_settings(server: SandboxServer) -> None:
    server.configure_sign_in_limit(capacity=1, refill_per_second=0)
    assert [sign_in(server).status_code for _ in range(2)] == [200, 429]
    control(server, "POST", "reset")
    assert server.sign_ins()["total"] == 0
    assert server.configure_sign_in_limit()["capacity"] == 1
    assert [sign_in(server).status_code for _ in range(2)] == [200, 429]


def test_each_sandbox_has_its_own_buckets(jobmojito_sandbox_factory: SandboxFactory) -> None:
    first = jobmojito_sandbox_factory(sign_in_capacity=1, sign_in_refill_per_second=0)
    second = jobmojito_sandbox_factory(sign_in_capacity=1, sign_in_refill_per_second=0)
    assert [sign_in(first).status_code, sign_in(first).status_code] == [200, 429]
    assert sign_in(second).status_code == 200


def test_cli_can_switch_the_limit_off() -> None:
    code = (
        "import sys; from airflow_provider_jobmojito.sandbox.__main__ import _parser;"
        "print(_parser().parse_args(sys.argv[1:]).sign_in_limit)"
    )
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    off = subprocess.run(
        [sys.executable, "-c", code, "--no-sign-in-limit"], capture_output=True, text=True, check=True
    )
    assert (on.stdout.strip(), off.stdout.strip()) == ("True", "False")
