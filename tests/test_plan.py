"""The plans decide everything but I/O: driven here by hand, step by step, with no network.

Each test plays the driver: it answers the plan's steps from a script and records what the plan
asked for, so the decisions (what is sent, how long to wait, when to sign in, what an answer
means) are asserted exactly, for both drivers at once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_jobmojito.auth import TokenProvider
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoConfigError,
    JobMojitoNotFoundError,
    JobMojitoUnavailableError,
)
from airflow_provider_jobmojito.plan import Blocking, Calls, Emit, Exclusive, Run, Secret, Send, Wait
from airflow_provider_jobmojito.retry import Stop
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.wire import Answer, NoAnswer
from tests.drivers import Log

API = "https://api.example.com/functions/v1"
EMAIL, PASSWORD = "plan@example.com", "plan-password-0123"


STATIC_TOKEN = "static-token-0123"


def calls_for(*, login: str = "", password: str = STATIC_TOKEN, **overrides: Any) -> Calls:
    settings = HookSettings.resolve(host=API, login=login, password=password, extras={}, overrides=overrides)
    settings = dataclasses.replace(
        settings, retry=dataclasses.replace(settings.retry, jitter=lambda _, high: high)
    )
    log = Log()
    return Calls(settings, TokenProvider(settings, "test", log=log), log)


def answer(status: int, body: Any = None, **headers: str) -> Answer:
    return Answer(status, headers, json.dumps({} if body is None else body).encode())


class Script:
    """Plays the driver: answers each Send from ``answers`` in turn, each Wait with ``stopped``,
    carries out Blocking steps and inner plans, and records every step."""

    def __init__(self, answers: list[Answer | NoAnswer], *, stopped: bool = False) -> None:
        self.answers: Iterator[Answer | NoAnswer] = iter(answers)
        self.stopped = stopped
        self.steps: list[Any] = []

    def run(self, plan: Any) -> Any:
        run = Run(plan)
        for step in run:
            self.steps.append(step)
            run.answer(self.carry_out(step))
        return run.result

    def carry_out(self, step: Any) -> Any:
        if isinstance(step, Send):
            return next(self.answers)
        if isinstance(step, Wait):
            return self.stopped
        if isinstance(step, Blocking):
            return step.function(*step.args)
        if isinstance(step, Exclusive):
            with step.locks():
                return self.run(step.plan)
        assert isinstance(step, Secret | Emit)
        return None

    def kinds(self) -> list[str]:
        return [type(step).__name__ for step in self.steps]

    def sent(self) -> list[Send]:
        return [step for step in self.steps if isinstance(step, Send)]

    def waits(self) -> list[float]:
        return [step.seconds for step in self.steps if isinstance(step, Wait)]


class TestRetries:
    def test_a_transient_answer_is_waited_for_then_sent_again(self) -> None:
        script = Script([answer(503), answer(200, {"ok": True})])
        assert script.run(calls_for().call("GET", "merchant-interview-list")) == {"ok": True}
        assert script.kinds() == ["Blocking", "Send", "Wait", "Send"]
        assert script.waits() == [0.5]

    def test_the_backoff_doubles_up_to_backoff_max(self) -> None:
        script = Script([answer(502)] * 5 + [answer(200, {})])
        script.run(calls_for(backoff_max=3).call("GET", "merchant-interview-list"))
        assert script.waits() == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_retry_after_is_obeyed(self) -> None:
        script = Script([answer(429, **{"Retry-After": "3"}), answer(200, {})])
        script.run(calls_for().call("GET", "merchant-interview-list"))
        assert script.waits() == [3.0]

    def test_gives_up_after_max_retries_plus_one_attempts(self) -> None:
        script = Script([answer(504)] * 3)
        with pytest.raises(JobMojitoUnavailableError, match="gave up after 3 attempt"):
            script.run(calls_for(max_retries=2).call("GET", "merchant-interview-list"))
        assert len(script.sent()) == 3

    def test_no_answer_is_retried_but_one_no_retry_can_help_is_not(self) -> None:
        script = Script([NoAnswer("refused", timed_out=False), answer(200, {})])
        script.run(calls_for().call("GET", "merchant-interview-list"))
        assert script.kinds() == ["Blocking", "Send", "Wait", "Send"]
        script = Script([NoAnswer("CERTIFICATE_VERIFY_FAILED", timed_out=False, permanent=True)])
        with pytest.raises(JobMojitoConfigError, match="no retry can help"):
            script.run(calls_for().call("GET", "merchant-interview-list"))
        assert "Wait" not in script.kinds()

    def test_a_stop_set_during_a_wait_ends_the_call(self) -> None:
        script = Script([answer(503)], stopped=True)
        with pytest.raises(JobMojitoUnavailableError, match="stopped retrying"):
            script.run(calls_for().call("GET", "merchant-interview-list", stop=Stop()))

    def test_a_final_answer_is_typed_and_not_retried(self) -> None:
        script = Script([answer(404, {"error": "No such position."})])
        with pytest.raises(JobMojitoNotFoundError, match="No such position"):
            script.run(calls_for().call("GET", "job-interview-get"))
        assert len(script.sent()) == 1


class TestRequests:
    def test_a_json_body_goes_with_any_method(self) -> None:
        script = Script([answer(200, {})])
        script.run(calls_for().call("PATCH", "job-interview-update", json={"position_id": "p", "name": "n"}))
        [send] = script.sent()
        assert (send.request.method, send.request.body) == ("PATCH", b'{"position_id":"p","name":"n"}')
        assert send.request.headers["Content-Type"] == "application/json"

    def test_the_query_leaves_out_what_is_none(self) -> None:
        script = Script([answer(200, {})])
        script.run(
            calls_for().call("GET", "merchant-interview-list", params={"status": "active", "type": None})
        )
        assert script.sent()[0].request.url == f"{API}/merchant-interview-list?status=active"

    def test_every_attempt_has_the_connections_timeout(self) -> None:
        script = Script([answer(200, {})])
        script.run(calls_for(timeout=7).call("GET", "merchant-interview-list"))
        assert script.sent()[0].timeout == 7


class TestTokens:
    def test_a_static_token_is_sent_as_it_is(self) -> None:
        script = Script([answer(200, {})])
        script.run(calls_for().call("GET", "merchant-interview-list"))
        assert script.sent()[0].token == STATIC_TOKEN

    def test_without_a_token_the_plan_signs_in_holding_the_accounts_locks(self) -> None:
        calls = calls_for(login=EMAIL, password=PASSWORD)
        script = Script(
            [answer(200, {"access_token": "signed-in-token", "expires_in": 3600}), answer(200, {})]
        )
        script.run(calls.call("GET", "merchant-interview-list"))
        exclusive = next(step for step in script.steps if isinstance(step, Exclusive))
        assert exclusive.account == calls.tokens.account
        sign_in, call = script.sent()
        assert sign_in.request.url == "https://api.example.com/auth/v1/token?grant_type=password"
        assert (sign_in.token, call.token) == (None, "signed-in-token")

    def test_a_401_signs_in_again_once_then_gives_the_auth_error(self) -> None:
        calls = calls_for(login=EMAIL, password=PASSWORD)
        token = {"access_token": "signed-in-token", "expires_in": 3600}
        script = Script([answer(200, token), answer(401), answer(200, token), answer(401)])
        with pytest.raises(JobMojitoAuthError):
            script.run(calls.call("GET", "merchant-interview-list"))
        assert [send.token for send in script.sent()] == [None, "signed-in-token", None, "signed-in-token"]


class TestDated:
    def test_call_dated_gives_the_answers_object_and_its_date_in_posix_seconds(self) -> None:
        date = "Sun, 06 Dec 2026 06:08:07 GMT"
        dated = Script([answer(200, {"ok": True}, Date=date)]).run(calls_for().call_dated("GET", "x"))
        assert (dated.body, dated.date) == ({"ok": True}, 1_796_537_287.0)
        # call() is the same call, without the date.
        assert Script([answer(200, {"ok": True}, Date=date)]).run(calls_for().call("GET", "x")) == {
            "ok": True
        }

    @pytest.mark.parametrize(
        ("headers", "date"),
        [
            ({}, None),
            ({"Date": "yesterday"}, None),
            ({"Date": "Sun, 06 Dec 99999 06:08:07 GMT"}, None),
            ({"Date": "Sun, 06 Dec 2026 06:08:07 -0000"}, 1_796_537_287.0),
            ({"Date": "Sun, 06 Dec 2026 07:08:07 +0100"}, 1_796_537_287.0),
        ],
        ids=["none", "not-a-date", "out-of-range", "minus-zero-is-utc", "an-offset"],
    )
    def test_an_answers_date_is_none_unless_its_date_header_is_an_http_date(
        self, headers: dict[str, str], date: float | None
    ) -> None:
        assert Answer(200, headers, b"{}").date() == date


class TestRun:
    def test_what_the_driver_gives_a_step_is_what_the_plan_receives(self) -> None:
        def plan() -> Any:
            first = yield Blocking(lambda: 1)
            second = yield Blocking(lambda: 2)
            return first + second

        run = Run(plan())
        for step in run:
            assert isinstance(step, Blocking)
            run.answer(step.function())
        assert run.result == 3

    def test_a_plan_left_part_way_is_closed(self) -> None:
        closed: list[bool] = []

        def plan() -> Any:
            try:
                yield Blocking(lambda: None)
                yield Blocking(lambda: None)
            finally:
                closed.append(True)

        for _ in Run(plan()):
            break
        assert closed == [True]


class TestReprs:
    def test_tokens_passwords_and_keys_stay_out_of_every_steps_repr(self) -> None:
        # A step is a local of the driver: error trackers that record locals must not see secrets.
        settings = HookSettings.resolve(
            host=API,
            login=EMAIL,
            password=PASSWORD,
            extras={"supabase_anon_key": "anon-key-0123"},
            overrides={},
        )
        tokens = TokenProvider(settings, "test")
        steps = [
            Send(tokens.sign_in_request(), "access-token-0123", 3.0),
            Blocking(tokens.refused, ("access-token-0123",)),
            Exclusive(tokens.account, tokens.sign_in_locks, iter(())),
            Secret("signing-key-0123"),
        ]
        text = " ".join(map(repr, steps))
        assert "Send(" in text
        assert tokens.account is not None
        for secret in ("access-token-0123", "anon-key-0123", PASSWORD, "signing-key-0123", tokens.account[2]):
            assert secret not in text
