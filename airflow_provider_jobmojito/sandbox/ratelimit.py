"""Supabase Auth's rate limit on sign-ins, and the sandbox's count of them.

Supabase Auth (GoTrue) limits ``POST /auth/v1/token`` per client IP with a token bucket: each
bucket holds at most 30 requests ("Each bucket has a maximum capacity of 30 requests",
https://supabase.com/docs/guides/auth/rate-limits) and refills at the configured rate. The
password grant draws from the bucket GoTrue calls ``Token`` (``internal/api/token.go`` in
github.com/supabase/auth), built in ``internal/api/apilimiter/apilimiter.go`` as
``tollbooth.NewLimiter(RateLimitTokenRefresh/(60*5), ...).SetBurst(30)``, and
``RateLimitTokenRefresh`` (``GOTRUE_RATE_LIMIT_TOKEN_REFRESH``, "token refreshes per 5 minutes"
in the dashboard) defaults to 150 (``internal/conf/configuration.go``). So: capacity 30, one
request back every 2 seconds.

Over the limit GoTrue answers 429 with ``{"code": 429, "error_code": "over_request_rate_limit",
"msg": "Request rate limit reached"}`` and no ``Retry-After`` header.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .state import ValidationError

if TYPE_CHECKING:
    from .state import Clock

#: Requests a bucket holds (Supabase: "a maximum capacity of 30 requests").
SIGN_IN_CAPACITY = 30
#: Requests a bucket gets back per second: GoTrue's default 150 per 5 minutes.
SIGN_IN_REFILL_PER_SECOND = 150 / (5 * 60)
#: GoTrue's answer to a request over the limit.
OVER_RATE_LIMIT_BODY = {
    "code": 429,
    "error_code": "over_request_rate_limit",
    "msg": "Request rate limit reached",
}


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SignInLimiter:
    """Token buckets per client, and counts of the sign-ins they saw.

    :param enabled: whether the limit applies; counting goes on either way.
    :param capacity: requests a full bucket holds.
    :param refill_per_second: requests a bucket gets back per second.
    :param clock: seconds, only ever compared with each other; :func:`time.monotonic` by default.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        capacity: int = SIGN_IN_CAPACITY,
        refill_per_second: float = SIGN_IN_REFILL_PER_SECOND,
        clock: Clock | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._counts = {"total": 0, "succeeded": 0, "failed": 0, "refused": 0}
        self.enabled = enabled
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        _check(capacity, refill_per_second)

    def admit(self, client: str) -> bool:
        """Count one sign-in attempt from ``client`` and take a request from its bucket.

        :return: ``False`` when the attempt must be refused (429); it is then counted as refused.
        """
        with self._lock:
            self._counts["total"] += 1
            if not self.enabled:
                return True
            now = self._clock()
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = _Bucket(float(self.capacity), now)
            # max(): a clock that steps back (a wall clock, or a test's) refills nothing.
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.capacity), bucket.tokens + elapsed * self.refill_per_second)
            bucket.updated = now
            if bucket.tokens < 1:
                self._counts["refused"] += 1
                return False
            bucket.tokens -= 1
            return True

    def record(self, *, succeeded: bool) -> None:
        """Count the outcome of an admitted attempt: a session issued, or a 400."""
        with self._lock:
            self._counts["succeeded" if succeeded else "failed"] += 1

    def counts(self) -> dict[str, int]:
        """``total`` attempts = ``succeeded`` + ``failed`` (bad body or credentials) + ``refused`` (429)."""
        with self._lock:
            return dict(self._counts)

    def settings(self) -> dict[str, Any]:
        """``enabled``, ``capacity`` and ``refill_per_second``."""
        with self._lock:
            return {
                "enabled": self.enabled,
                "capacity": self.capacity,
                "refill_per_second": self.refill_per_second,
            }

    def configure(
        self,
        *,
        enabled: bool | None = None,
        capacity: int | None = None,
        refill_per_second: float | None = None,
    ) -> dict[str, Any]:
        """Change the settings given; every bucket starts full again. Returns the settings.

        :raises ValidationError: for a capacity below 1 or a negative refill rate.
        """
        new_capacity = self.capacity if capacity is None else capacity
        new_rate = self.refill_per_second if refill_per_second is None else refill_per_second
        _check(new_capacity, new_rate)
        with self._lock:
            if enabled is not None:
                self.enabled = enabled
            self.capacity, self.refill_per_second = new_capacity, new_rate
            self._buckets.clear()
        return self.settings()

    def reset(self) -> None:
        """Zero the counts and refill every bucket; the settings stay."""
        with self._lock:
            self._buckets.clear()
            self._counts = dict.fromkeys(self._counts, 0)


def _check(capacity: object, refill_per_second: object) -> None:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValidationError("capacity", "Must be an integer of at least 1.")
    if (
        isinstance(refill_per_second, bool)
        or not isinstance(refill_per_second, int | float)
        or not 0 <= refill_per_second < float("inf")
    ):
        raise ValidationError("refill_per_second", "Must be a finite number of at least 0.")
