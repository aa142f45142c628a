"""The hook's two token modes: a static token, and signing in with e-mail and password."""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoConfigError,
    JobMojitoServerError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import SandboxServer
from tests.conftest import logged_lines
from tests.timing import frozen_token_clock

POSITION = "9b1d3c52-7e0a-4f7b-8c55-2a1e6d4b0f10"
SIGN_IN = "/auth/v1/token"
EMAIL, PASSWORD = "recruiter@example.com", "correct horse battery staple"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    return jobmojito_sandbox


def paths(sandbox: Any) -> list[str]:
    return [r["path"] for r in sandbox.requests_log()]


class TestStaticToken:
    def test_an_expired_jwt_is_refused_without_sending_anything(
        self, sandbox: Any, jobmojito_conn: Any
    ) -> None:
        token = sandbox.issue_token(lifetime=-120)
        hook = JobMojitoHook(jobmojito_conn(password=token))
        with pytest.raises(JobMojitoAuthError, match=r"expired at \d{4}-\d\d-\d\dT.*ago") as raised:
            hook.set_interview_state(POSITION, status="active")
        assert isinstance(raised.value, AirflowFailException)
        assert sandbox.requests_log() == []

    def test_a_jwt_about_to_expire_is_sent_with_one_warning(
        self,
        sandbox: Any,
        jobmojito_conn: Any,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        hook = JobMojitoHook(jobmojito_conn(password=sandbox.issue_token(lifetime=120)))
        hook.set_interview_state(POSITION, status="active")
        hook.set_interview_state(POSITION, status="archived")
        warnings = [line for line in logged_lines(capfd, caplog) if "expires at" in line]
        assert len(warnings) == 1
        assert "jobmojito_default" in warnings[0]
        assert sandbox.position(POSITION)["status"] == "archived"

    def test_a_missing_token_says_how_to_configure_one(self, sandbox: Any, jobmojito_conn: Any) -> None:
        hook = JobMojitoHook(jobmojito_conn(password=None))
        with pytest.raises(ValueError, match="no access token"):
            hook.set_interview_state(POSITION, status="active")
        assert sandbox.requests_log() == []


class TestSignIn:
    @pytest.fixture
    def server(self) -> Any:
        with SandboxServer(email=EMAIL, password=PASSWORD, token_lifetime=3600) as server:
            server.seed([{"id": POSITION, "status": "draft"}])
            yield server

    def conn(self, jobmojito_conn: Any, server: Any, **extra: Any) -> str:
        return jobmojito_conn(
            host=server.api_url,
            login=EMAIL,
            password=PASSWORD,
            extra={"backoff_factor": 0.01, **extra},
        )

    def test_signs_in_once_and_reuses_the_token_across_hooks(self, server: Any, jobmojito_conn: Any) -> None:
        conn_id = self.conn(jobmojito_conn, server)
        JobMojitoHook(conn_id).set_interview_state(POSITION, status="active")
        JobMojitoHook(conn_id).set_interview_state(POSITION, status="archived")
        assert paths(server).count(SIGN_IN) == 1
        sign_in = server.requests_log()[0]
        assert sign_in["query"] == {"grant_type": "password"}
        assert sign_in["json"]["email"] == EMAIL
        assert server.position(POSITION)["status"] == "archived"

    def test_signs_in_again_once_after_a_401(self, server: Any, jobmojito_conn: Any) -> None:
        hook = JobMojitoHook(self.conn(jobmojito_conn, server))
        hook.set_interview_state(POSITION, status="active")
        server.add_fault(kind="status", status=401, count=1, path="/functions/v1/job-interview-set-state")
        hook.set_interview_state(POSITION, status="archived")
        assert paths(server).count(SIGN_IN) == 2
        assert server.position(POSITION)["status"] == "archived"

    def test_a_second_401_after_signing_in_again_is_an_auth_error(
        self, server: Any, jobmojito_conn: Any
    ) -> None:
        server.add_fault(kind="status", status=401, count=2, path="/functions/v1/job-interview-set-state")
        with pytest.raises(JobMojitoAuthError):
            JobMojitoHook(self.conn(jobmojito_conn, server)).set_interview_state(POSITION, status="active")
        assert paths(server).count(SIGN_IN) == 2

    def test_signs_in_again_when_the_cached_token_is_about_to_expire(
        self, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The sandbox's token clock stands still: only the hook's own clock (the real one, which
        # the sleep below moves past the token's lifetime) decides that the token is too old.
        frozen_token_clock(monkeypatch)
        with SandboxServer(email=EMAIL, password=PASSWORD, token_lifetime=2) as server:
            server.seed([{"id": POSITION, "status": "draft"}])
            hook = JobMojitoHook(self.conn(jobmojito_conn, server))
            hook.set_interview_state(POSITION, status="active")
            time.sleep(2.1)  # at least this long, whatever the load: never too short
            hook.set_interview_state(POSITION, status="archived")
            assert paths(server).count(SIGN_IN) == 2
            assert [r["status"] for r in server.requests_log()] == [200, 200, 200, 200]

    def test_a_failing_sign_in_service_is_a_server_error_airflow_may_retry(
        self, server: Any, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server.add_fault(kind="status", status=500, count=1, path=SIGN_IN)
        hook = JobMojitoHook(self.conn(jobmojito_conn, server))
        with pytest.raises(JobMojitoServerError, match=r"Supabase sign-in .* failed \(500\)") as raised:
            hook.set_interview_state(POSITION, status="active")
        assert not isinstance(raised.value, (JobMojitoAuthError, AirflowFailException))
        # Remembered briefly on the host, so a task right behind it fails fast the same way...
        with pytest.raises(JobMojitoServerError, match="moments ago"):
            JobMojitoHook(self.conn(jobmojito_conn, server)).set_interview_state(POSITION, status="active")
        assert paths(server).count(SIGN_IN) == 1
        # ...but no bad token was cached: a process not sharing that memory signs in and goes through.
        monkeypatch.setenv("AIRFLOW__JOBMOJITO__TOKEN_CACHE", "process")
        assert JobMojitoHook(self.conn(jobmojito_conn, server)).set_interview_state(
            POSITION, status="active"
        ) == {"success": True}

    def test_a_sign_in_url_that_is_not_found_points_at_supabase_url(
        self, server: Any, jobmojito_conn: Any
    ) -> None:
        hook = JobMojitoHook(self.conn(jobmojito_conn, server, supabase_url=server.url + "/auth/v1"))
        with pytest.raises(JobMojitoConfigError, match="answered 404: check the connection's supabase_url"):
            hook.set_interview_state(POSITION, status="active")
        assert server.position(POSITION)["status"] == "draft"

    @pytest.mark.parametrize("status", [405, 409, 410])
    def test_a_sign_in_answer_that_is_not_a_refusal_points_at_supabase_url(
        self, server: Any, jobmojito_conn: Any, status: int
    ) -> None:
        server.add_fault(kind="status", status=status, count=1, path=SIGN_IN)
        with pytest.raises(
            JobMojitoConfigError, match=f"answered {status}: check the connection's supabase_url"
        ):
            JobMojitoHook(self.conn(jobmojito_conn, server)).set_interview_state(POSITION, status="active")

    def test_wrong_password_is_an_auth_error_that_does_not_show_it(
        self, server: Any, jobmojito_conn: Any
    ) -> None:
        conn_id = jobmojito_conn(host=server.api_url, login=EMAIL, password="wrong password 123")
        with pytest.raises(JobMojitoAuthError, match="Invalid login credentials") as raised:
            JobMojitoHook(conn_id).set_interview_state(POSITION, status="active")
        assert "wrong password 123" not in str(raised.value)
        assert paths(server) == [SIGN_IN]

    def test_sends_the_anon_key_as_apikey(self, jobmojito_conn: Any) -> None:
        with SandboxServer(email=EMAIL, password=PASSWORD, anon_key="anon-key-for-tests") as server:
            server.seed([{"id": POSITION, "status": "draft"}])
            without = JobMojitoHook(self.conn(jobmojito_conn, server))
            with pytest.raises(JobMojitoAuthError):
                without.set_interview_state(POSITION, status="active")
            conn_id = self.conn(jobmojito_conn, server, supabase_anon_key="anon-key-for-tests")
            JobMojitoHook(conn_id).set_interview_state(POSITION, status="active")
            assert server.position(POSITION)["status"] == "active"

    def test_supabase_url_extra_points_sign_in_elsewhere(self, server: Any, jobmojito_conn: Any) -> None:
        conn_id = self.conn(jobmojito_conn, server, supabase_url="http://127.0.0.1:9")
        with pytest.raises(Exception, match="Supabase sign-in could not be reached"):
            JobMojitoHook(conn_id, max_retries=0).set_interview_state(POSITION, status="active")
        assert server.requests_log() == []
