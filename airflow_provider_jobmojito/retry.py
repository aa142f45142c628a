"""When and how long to wait before retrying a transient failure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import pendulum

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
    """

    max_retries: int
    backoff_factor: float
    backoff_max: float

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (counted from 0).

        Full jitter (a uniform draw below the exponential cap) keeps parallel workers that failed
        together from retrying together.
        """
        cap = min(self.backoff_max, self.backoff_factor * (2**retry_number))
        return random.uniform(0, cap)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - pendulum.now("UTC")).total_seconds())
