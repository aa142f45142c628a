"""The retry policy and decisions, without sleeping: jitter is replaced by its upper bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from airflow_provider_jobmojito.exceptions import JobMojitoConfigError, JobMojitoUnavailableError
from airflow_provider_jobmojito.retry import (
    Failure,
    Retrying,
    RetryPolicy,
    failure_of_status,
    parse_retry_after,
)


def upper_bound(low: float, high: float) -> float:
    return high


def policy(max_retries: int = 5, factor: float = 0.5, ceiling: float = 30.0) -> RetryPolicy:
    return RetryPolicy(max_retries, factor, ceiling, jitter=upper_bound)


class TestBackoff:
    def test_the_cap_doubles_per_retry_up_to_backoff_max(self) -> None:
        assert [policy(ceiling=5).backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]

    def test_full_jitter_draws_between_zero_and_the_cap(self) -> None:
        draws: list[tuple[float, float]] = []
        RetryPolicy(3, 2.0, 30.0, jitter=lambda low, high: draws.append((low, high)) or 0.0).backoff(2)
        assert draws == [(0.0, 8.0)]

    def test_a_huge_retry_number_does_not_overflow(self) -> None:
        assert policy(ceiling=30).backoff(5000) == 30.0

    def test_with_max_retries_keeps_everything_else(self) -> None:
        changed = policy().with_max_retries(0)
        assert (changed.max_retries, changed.attempts, changed.backoff_factor, changed.jitter) == (
            0,
            1,
            0.5,
            upper_bound,
        )
        assert policy().with_max_retries(None) == policy()


class TestRetrying:
    def test_waits_the_backoff_then_gives_up_after_max_retries_plus_one_attempts(self) -> None:
        retrying = Retrying(policy(max_retries=2), "JobMojito GET /x")
        failure = Failure("answered 503", status_code=503)
        assert [retrying.after(failure), retrying.after(failure)] == [0.5, 1.0]
        with pytest.raises(
            JobMojitoUnavailableError, match=r"GET /x answered 503; gave up after 3"
        ) as raised:
            retrying.after(failure)
        assert raised.value.status_code == 503

    def test_retry_after_replaces_the_backoff(self) -> None:
        assert Retrying(policy(), "call").after(Failure("answered 429", 429, retry_after=7.0)) == 7.0

    def test_retry_after_beyond_backoff_max_ends_the_call_at_once(self) -> None:
        with pytest.raises(JobMojitoUnavailableError, match="asked to wait 120 s"):
            Retrying(policy(ceiling=30), "call").after(Failure("answered 429", 429, retry_after=120.0))

    def test_a_permanent_failure_is_a_config_error_without_retries(self) -> None:
        with pytest.raises(JobMojitoConfigError, match="no retry can help: bad certificate"):
            Retrying(policy(), "call").after(Failure("bad certificate", permanent=True))

    def test_a_stopped_call_says_so(self) -> None:
        error = Retrying(policy(), "call").stopped(Failure("answered 503", 503))
        assert "stopped retrying" in str(error)
        assert error.status_code == 503


class TestStatuses:
    @pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
    def test_transient_statuses_are_failures_worth_a_retry(self, status: int) -> None:
        assert failure_of_status(status, None) == Failure(f"answered {status}", status_code=status)

    @pytest.mark.parametrize("status", [200, 400, 401, 404, 422, 500])
    def test_other_statuses_are_final(self, status: int) -> None:
        # 500 is final: this API also answers 500 for an unknown position id.
        assert failure_of_status(status, "5") is None


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("header", "seconds"),
        [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), (None, None), ("", None), ("soon", None), ("nan", None)],
    )
    def test_delta_seconds(self, header: str | None, seconds: float | None) -> None:
        assert parse_retry_after(header) == seconds

    def test_an_http_date_is_the_time_left_until_it(self) -> None:
        when = datetime.now(UTC) + timedelta(seconds=30)
        seconds = parse_retry_after(format_datetime(when, usegmt=True))
        assert seconds is not None
        assert 25 < seconds <= 30

    def test_a_date_in_the_past_means_now(self) -> None:
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
