"""test_connection changes nothing and says what to fix."""

from __future__ import annotations

import os
from typing import Any

import pytest

POSITION = "0d6f4b8e-1a2c-4e3f-9a7b-6c5d4e3f2a1b"


def _connection_to_test(conn_id: str) -> Any:
    """The Connection object Airflow's CLI and UI test: it builds the hook from the connection type."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if hasattr(conn, "test_connection"):
        return conn
    # Airflow 3.1 and 3.2: the Task SDK's Connection has no test_connection(); `airflow connections
    # test` and the API server test the core model, read here from the variable as they read it.
    from airflow.models.connection import Connection

    return Connection.from_json(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)


def test_a_good_token_connects_with_a_read_call_only(jobmojito_sandbox: Any, jobmojito_conn: Any) -> None:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    ok, message = _connection_to_test(jobmojito_conn()).test_connection()
    assert ok, message
    assert "accepted" in message
    assert [(r["method"], r["path"]) for r in jobmojito_sandbox.requests_log()] == [
        ("GET", "/functions/v1/merchant-interview-list")
    ]
    assert jobmojito_sandbox.position(POSITION)["status"] == "draft"


def test_a_bad_token_says_authentication_failed(jobmojito_sandbox: Any, jobmojito_conn: Any) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    ok, message = JobMojitoHook(jobmojito_conn(password="not-a-valid-token")).test_connection()
    assert not ok
    assert message.startswith("Authentication failed")


def test_an_expired_token_says_when_it_expired_and_sends_nothing(
    jobmojito_sandbox: Any, jobmojito_conn: Any
) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    conn_id = jobmojito_conn(password=jobmojito_sandbox.issue_token(lifetime=-60))
    ok, message = JobMojitoHook(conn_id).test_connection()
    assert not ok
    assert "expired at" in message
    assert jobmojito_sandbox.requests_log() == []


def test_an_unreachable_host_says_so_quickly(jobmojito_conn: Any) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    ok, message = JobMojitoHook(jobmojito_conn(host="http://127.0.0.1:9/functions/v1")).test_connection()
    assert not ok
    assert message.startswith("Could not reach JobMojito")
    assert "1 attempt" in message


def test_an_unknown_extra_is_reported(jobmojito_conn: Any) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    ok, message = JobMojitoHook(jobmojito_conn(extra={"proxy": "x"})).test_connection()
    assert not ok
    assert "Unknown connection extra 'proxy'" in message


@pytest.mark.parametrize("host", [" {url}", "{url}\n", "\t{url} "])
def test_whitespace_around_the_host_is_dropped(
    jobmojito_sandbox: Any, jobmojito_conn: Any, host: str
) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    ok, message = JobMojitoHook(
        jobmojito_conn(host=host.format(url=jobmojito_sandbox.api_url))
    ).test_connection()
    assert ok, message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": "http://exa mple.com/functions/v1"}, "host must be an http(s) URL without spaces"),
        ({"host": "ftp://example.com"}, "host must be an http(s) URL"),
        ({"extra": {"timeout": 1e12}}, "timeout must be a number of seconds from 0 to 86400"),
    ],
)
def test_a_bad_setting_is_a_failed_test_with_the_reason_never_an_exception(
    jobmojito_conn: Any, fields: dict[str, Any], expected: str
) -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    ok, message = JobMojitoHook(jobmojito_conn(**fields)).test_connection()
    assert not ok
    assert expected in message
