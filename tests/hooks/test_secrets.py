"""Tokens, passwords and signing keys never reach a log line or an exception message."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_jobmojito import masking
from airflow_provider_jobmojito.exceptions import JobMojitoError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import SandboxServer

POSITION = "5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d"
EMAIL, PASSWORD = "ops@example.com", "p4ssw0rd-that-must-stay-hidden"


def test_signing_key_is_registered_with_the_masker_when_parsed(
    jobmojito_sandbox: Any, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "active"}])
    masked: list[str] = []
    real_mask = masking.mask_secret
    monkeypatch.setattr(masking, "mask_secret", lambda s, *a, **k: (masked.append(s), real_mask(s))[1])
    keys = JobMojitoHook(jobmojito_conn()).enable_embedding(POSITION)
    assert keys["embed_signing_key"] in masked

    from airflow.providers.common.compat.sdk import redact

    assert redact(f"key={keys['embed_signing_key']}") == "key=***"


def test_no_secret_in_logs_or_errors_across_success_and_failure(
    jobmojito_conn: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secrets: list[str] = [PASSWORD]
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG), SandboxServer(email=EMAIL, password=PASSWORD) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        static = server.issue_token()
        secrets.append(static)
        hooks = [
            JobMojitoHook(jobmojito_conn("static", host=server.api_url, password=static), backoff_factor=0),
            JobMojitoHook(
                jobmojito_conn("signin", host=server.api_url, login=EMAIL, password=PASSWORD),
                backoff_factor=0,
            ),
        ]
        for hook in hooks:
            secrets.append(hook.enable_embedding(POSITION)["embed_signing_key"])
            server.add_fault(kind="status", status=503, count=1)
            hook.set_interview_state(POSITION, status="active")
            for position_id, status in (
                ("00000000-0000-4000-8000-000000000000", "active"),
                (POSITION, "bogus"),
            ):
                with pytest.raises((JobMojitoError, ValueError)) as raised:
                    hook.set_interview_state(position_id, status=status)
                errors.append(str(raised.value))
        expired = server.issue_token(lifetime=-5)
        secrets.append(expired)
        expired_hook = JobMojitoHook(jobmojito_conn("expired", host=server.api_url, password=expired))
        errors.append(expired_hook.test_connection()[1])
        with pytest.raises(JobMojitoError) as raised:
            expired_hook.set_interview_state(POSITION, status="active")
        errors.append(str(raised.value))
        wrong = jobmojito_conn("wrong", host=server.api_url, login=EMAIL, password=PASSWORD + "x")
        with pytest.raises(JobMojitoError) as raised:
            JobMojitoHook(wrong).set_interview_state(POSITION, status="active")
        errors.append(str(raised.value))
        secrets.append(PASSWORD + "x")
        ok, message = JobMojitoHook("wrong").test_connection()
        errors.append(message)
    assert not ok
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "answered 503" in logs  # the retry was logged, so the logs really were captured
    text = logs + "\n".join(errors)
    for secret in secrets:
        assert secret not in text


def test_password_anon_key_and_signed_in_token_are_registered_with_the_masker(jobmojito_conn: Any) -> None:
    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_jobmojito.auth import SIGN_IN_CACHE

    anon_key = "anon-key-registered-with-masker"
    with SandboxServer(email=EMAIL, password=PASSWORD, anon_key=anon_key) as server:
        server.seed([{"id": POSITION, "status": "draft"}])
        conn_id = jobmojito_conn(
            host=server.api_url, login=EMAIL, password=PASSWORD, extra={"supabase_anon_key": anon_key}
        )
        hook = JobMojitoHook(conn_id)
        hook.set_interview_state(POSITION, status="active")
        cached = SIGN_IN_CACHE.get(SIGN_IN_CACHE.key(hook.settings.supabase_url, EMAIL, PASSWORD))
        assert cached is not None
        for secret in (PASSWORD, anon_key, cached.access_token):
            assert redact(f"x {secret} y") == "x *** y"
