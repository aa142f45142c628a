"""Errors raised by the JobMojito provider, catchable by meaning.

Every error is a :class:`JobMojitoError`, which is an ``AirflowException``. Errors that no retry
can fix (bad credentials, a rejected field, an unknown resource) are also ``AirflowFailException``,
so Airflow fails the task at once instead of spending its retries on them.

Messages carry the API's short ``error`` text and never a whole response body, a token or a key.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

_MAX_ERROR_TEXT = 300


class JobMojitoError(AirflowException):
    """Base class of every JobMojito error.

    :param message: what went wrong, for a person.
    :param status_code: the HTTP status the API answered, or ``None`` when no answer came.
    :param error: the API's ``error`` text, if it sent one.
    :param field: the API's ``name`` of the offending field, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        # Shadows AirflowException.status_code (an HTTPStatus the API server uses for its own
        # answers): here it is what JobMojito answered.
        self.status_code: int | None = status_code  # type: ignore[assignment]
        self.error = _shorten(error)
        self.field = field


class JobMojitoAuthError(JobMojitoError, AirflowFailException):
    """The credentials were refused (401, 403), have expired, or sign-in failed. Not retried."""


class JobMojitoValidationError(JobMojitoError, AirflowFailException):
    """The API rejected a field (422); :attr:`field` names it. Not retried."""


class JobMojitoNotFoundError(JobMojitoError, AirflowFailException):
    """The API knows no such resource (404). Not retried."""


class JobMojitoClientError(JobMojitoError, AirflowFailException):
    """Any other 4xx answer: the request itself is wrong, so a retry would fail the same way."""


class JobMojitoConfigError(JobMojitoError, AirflowFailException, ValueError):
    """The connection or the hook's arguments are invalid (an unknown extra, a bad timeout...)."""


class JobMojitoServerError(JobMojitoError):
    """The API failed (500 and other 5xx that are not retried).

    ``job-interview-set-state`` also answers 500 for an unknown position id and for an
    authorization failure, so this error may mean either of those.
    """


class JobMojitoUnavailableError(JobMojitoError):
    """Transient failures (connection errors, timeouts, 429, 502, 503, 504) outlasted the retries."""


def _shorten(text: str | None) -> str | None:
    if text is None or len(text) <= _MAX_ERROR_TEXT:
        return text
    return text[: _MAX_ERROR_TEXT - 1] + "…"


__all__ = [
    "JobMojitoAuthError",
    "JobMojitoClientError",
    "JobMojitoConfigError",
    "JobMojitoError",
    "JobMojitoNotFoundError",
    "JobMojitoServerError",
    "JobMojitoUnavailableError",
    "JobMojitoValidationError",
]
