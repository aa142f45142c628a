"""When to retry a transient failure, and how long to wait: decisions without any I/O.

The sync client (:mod:`~airflow_provider_jobmojito.client`) and an async one share these: each
sends an attempt its own way, describes what went wrong as a :class:`Failure`, and asks its
:class:`Retrying` how long to wait, or gets the exception that ends the call.
"""

from __future__ import annotations

import math
import random
import threading
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

    def stopped(
        self, failure: Failure, why: str = "the bulk change was stopped"
    ) -> JobMojitoUnavailableError:
        """The error for a call whose retries were stopped (a cancelled bulk change)."""
        return JobMojitoUnavailableError(
            f"{self.what} {failure.reason}; stopped retrying: {why}.", status_code=failure.status_code
        )


class Stop:
    """What the calls of one bulk change share to stop together: a cancel, or a breaker.

    The breaker trips when the API is plainly down: ``failures_in_a_row`` attempts failed
    transiently across the batch, with no answer in between. Each answer that is not transient
    (a success, or a final error) starts the count again, so failures scattered among successes
    never trip it.

    :param failures_in_a_row: when to trip; ``None`` never trips.
    """

    def __init__(self, failures_in_a_row: int | None = None) -> None:
        self.failures_in_a_row = failures_in_a_row
        self.event = threading.Event()
        #: Why sending stopped, once it did: ``the bulk change was cancelled…``.
        self.reason: str | None = None
        #: Whether the breaker (rather than a cancel) stopped it.
        self.tripped = False
        self._in_a_row = 0
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; ``True`` (and at once) when stopped meanwhile."""
        return self.event.wait(seconds)

    def cancel(self) -> None:
        """Stop sending: the task was stopped. Safe from another thread or a signal handler."""
        if self.reason is None:
            self.reason = "the bulk change was cancelled (the task was stopped)"
        self.event.set()

    def answered(self) -> None:
        """An attempt got an answer that is not transient: the API is up."""
        self._in_a_row = 0  # a plain store: a lost race only delays a trip by one attempt

    def failed(self, failure: Failure) -> None:
        """An attempt failed transiently; trip when that makes ``failures_in_a_row``."""
        if self.failures_in_a_row is None:
            return
        with self._lock:
            self._in_a_row += 1
            if self._in_a_row < self.failures_in_a_row or self.event.is_set():
                return
            self.tripped = True
            self.reason = (
                f"the API looks down: {self._in_a_row} attempts in a row failed across the batch "
                f"(the last {failure.reason}), so the rest was not sent; Airflow's task retries can "
                "take over"
            )
        self.event.set()


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
