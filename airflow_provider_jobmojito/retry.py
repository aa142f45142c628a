"""When to retry a transient failure, and how long to wait: decisions without any I/O.

The sync client (:mod:`~airflow_provider_jobmojito.client`) and an async one share these: each
sends an attempt its own way, describes what went wrong as a :class:`Failure`, and asks its
:class:`Retrying` how long to wait, or gets the exception that ends the call.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import pendulum

from airflow_provider_jobmojito.exceptions import JobMojitoConfigError, JobMojitoUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable

#: Answers worth another try: a request the server timed out (408), throttling, and the gateway
#: errors a proxy gives while the service restarts. 500 is left out: this API answers 500 for
#: unknown ids too.
RETRYABLE_STATUS_CODES = frozenset({408, 429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter.

    :param max_retries: retries after the first attempt (0 means one attempt in all).
    :param backoff_factor: the cap of the first wait, in seconds; it doubles with each retry.
    :param backoff_max: the largest wait, in seconds, and the longest ``Retry-After`` obeyed.
    :param jitter: draws a wait between its two arguments; replaceable so that tests can assert
        backoff without randomness.
    """

    max_retries: int
    backoff_factor: float
    backoff_max: float
    jitter: Callable[[float, float], float] = field(default=random.uniform, repr=False, compare=False)

    @property
    def attempts(self) -> int:
        """Attempts in all: the first one and the retries."""
        return self.max_retries + 1

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (counted from 0).

        Full jitter (a uniform draw below the exponential cap) keeps parallel workers that failed
        together from retrying together.
        """
        # Capped before the power is taken: 2**retry_number alone overflows a float past ~1,000.
        cap = (
            self.backoff_max
            if retry_number > 60
            else min(self.backoff_max, self.backoff_factor * 2**retry_number)
        )
        return self.jitter(0.0, cap)

    def with_max_retries(self, max_retries: int | None) -> RetryPolicy:
        """This policy with another number of retries (``None`` keeps it)."""
        if max_retries is None or max_retries == self.max_retries:
            return self
        return RetryPolicy(max_retries, self.backoff_factor, self.backoff_max, self.jitter)


@dataclass(frozen=True)
class Failure:
    """One attempt that did not get a usable answer.

    :param reason: what happened, for messages: ``answered 503``, ``got no answer within 30 s``.
    :param status_code: the HTTP status, when an answer came.
    :param retry_after: seconds the server asked to wait (``Retry-After``), if it did.
    :param permanent: whether no retry can help (a certificate that does not verify).
    """

    reason: str
    status_code: int | None = None
    retry_after: float | None = None
    permanent: bool = False


class Retrying:
    """The retry decisions of one call: ``wait = retrying.after(failure)`` or an exception.

    :param policy: how often and how long.
    :param what: the call, for messages: ``JobMojito POST /job-interview-set-state for position …``.
    """

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        #: Attempts made so far.
        self.attempt = 0

    def after(self, failure: Failure) -> float:
        """Count a failed attempt; return the seconds to wait before the next one.

        :raises JobMojitoConfigError: when the failure is permanent.
        :raises JobMojitoUnavailableError: when the retries are used up, or the server asks to wait
            longer than ``backoff_max``.
        """
        self.attempt += 1
        policy, what = self.policy, self.what
        if failure.permanent:
            raise JobMojitoConfigError(f"{what} failed and no retry can help: {failure.reason}")
        if failure.retry_after is not None and failure.retry_after > policy.backoff_max:
            raise JobMojitoUnavailableError(
                f"{what} {failure.reason} and asked to wait {failure.retry_after:g} s before trying "
                f"again, longer than backoff_max ({policy.backoff_max:g} s): giving up.",
                status_code=failure.status_code,
            )
        if self.attempt >= policy.attempts:
            raise JobMojitoUnavailableError(
                f"{what} {failure.reason}; gave up after {self.attempt} attempt(s).",
                status_code=failure.status_code,
            )
        if failure.retry_after is not None:
            return failure.retry_after
        return policy.backoff(self.attempt - 1)

    def stopped(self, failure: Failure) -> JobMojitoUnavailableError:
        """The error for a call whose retries were stopped (a cancelled bulk change)."""
        return JobMojitoUnavailableError(
            f"{self.what} {failure.reason}; stopped retrying: the bulk change was stopped.",
            status_code=failure.status_code,
        )


def failure_of_status(status: int, retry_after_header: str | None) -> Failure | None:
    """The :class:`Failure` an answer with ``status`` is, or ``None`` when it is final."""
    if status not in RETRYABLE_STATUS_CODES:
        return None
    return Failure(
        f"answered {status}", status_code=status, retry_after=parse_retry_after(retry_after_header)
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - pendulum.now("UTC")).total_seconds())
