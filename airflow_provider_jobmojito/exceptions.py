"""Errors raised by the JobMojito provider, catchable by meaning.

Every error the provider raises on purpose is a :class:`JobMojitoError`, which is an
``AirflowException``. Errors that no retry
can fix (bad credentials, a rejected field, an unknown resource) are also ``AirflowFailException``,
so Airflow fails the task at once instead of spending its retries on them.

Messages carry the API's short ``error`` text and never a whole response body, a token or a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_jobmojito.bulk import StateChangeResult

_MAX_ERROR_TEXT = 300
#: Failures listed in a :class:`JobMojitoBulkError` message; the log lists them all.
MAX_LISTED_FAILURES = 10


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
        #: The HTTP status the API answered, or ``None`` when no answer came.
        self.status_code: int | None = status_code  # type: ignore[assignment]
        #: The API's ``error`` text, shortened, if it sent one.
        self.error = _shorten(error)
        #: The API's ``name`` of the offending field, if it sent one.
        self.field = field

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later: the API was down, throttling, or failed (5xx).

        The one answer to "transient or permanent?" in the provider: a wait (sensor, trigger)
        goes on through a transient error, Airflow may retry a task that raised one, and a bulk
        change is retryable when any failure is. Permanent errors are ``AirflowFailException`` s,
        which Airflow fails at once.
        """
        return not isinstance(self, AirflowFailException)


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


class JobMojitoArgumentError(JobMojitoError, AirflowFailException, ValueError):
    """An argument that can never work: an id that is not a UUID, an unknown status...

    A ``ValueError``, so a DAG built with it fails to import; also an ``AirflowFailException``, so
    a task that gets it at run time (a rendered template, a mapped instance from ``expand``) fails
    without spending retries.
    """


class JobMojitoUnexpectedAnswerError(JobMojitoError, AirflowFailException):
    """A 2xx answer that is not what the endpoint answers: not a JSON object, or (from
    ``job-interview-set-state``) an object that does not confirm the change.

    The change may or may not have been made, so the message says to check the position. Not
    retried by Airflow: the same request gets the same answer.
    """


class JobMojitoServerError(JobMojitoError):
    """The API failed (500 and other 5xx that are not retried).

    ``job-interview-set-state`` also answers 500 for an unknown position id and for an
    authorization failure, so this error may mean either of those.
    """


class JobMojitoUnavailableError(JobMojitoError):
    """Transient failures (connection errors, timeouts, 408, 429, 502, 503, 504) outlasted the retries."""


class JobMojitoWaitError(JobMojitoError, AirflowFailException):
    """A deferred wait ended on a permanent API error: the position is gone (404), the credentials
    are refused... Not retried.

    The triggerer hands the error's message and its :attr:`JobMojitoError.transient` over, not
    its class, so this one stands for every permanent kind; its message names the original.
    """


class JobMojitoGuardrailError(JobMojitoError, AirflowFailException):
    """A reconcile planned more changes than its ``max_changes`` allows; nothing was written.
    Not retried: the same desired state plans the same changes."""


class JobMojitoDriftError(JobMojitoError, AirflowFailException):
    """The live positions differ from the desired state (a drift check); the message lists the
    differences. Not retried: the drift stays until someone reconciles it."""


class JobMojitoBulkError(JobMojitoError):
    """Some positions of a bulk state change failed; every position was attempted.

    Catch this to handle any bulk failure. When every failure is permanent (auth, validation,
    another 4xx) the error raised is the subclass :class:`JobMojitoPermanentBulkError`, which
    Airflow does not retry; otherwise Airflow may retry the task, which is safe since setting a
    state is idempotent.

    :param message: what went wrong, for a person.
    :param results: every position's result, in input order.
    """

    def __init__(self, message: str, *, results: Sequence[StateChangeResult] = ()) -> None:
        failed = [result for result in results if not result.ok]
        codes = {result.error.status_code for result in failed if result.error is not None}
        super().__init__(message, status_code=codes.pop() if len(codes) == 1 else None)
        #: Every position's result, in input order.
        self.results: list[StateChangeResult] = list(results)
        #: The results that failed, in input order.
        self.failed: list[StateChangeResult] = failed

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_bulk_error, (type(self), str(self), self.results)

    @classmethod
    def from_results(cls, results: Sequence[StateChangeResult]) -> JobMojitoBulkError:
        """The error for ``results``: permanent when every failure is, with a summary message."""
        failed = [result for result in results if not result.ok]
        permanent = all(result.error is not None and not result.error.transient for result in failed)
        kind = JobMojitoPermanentBulkError if permanent else JobMojitoBulkError
        listed = first_of(
            [f"{r.position_id}: {_brief(r.error)}" for r in failed],
            separator="; ",
            rest="(all are in .failed and in the log)",
        )
        noun = "position" if len(results) == 1 else "positions"
        message = f"{len(failed)} of {len(results)} {noun} failed: {listed}."
        return kind(message, results=results)


class JobMojitoPermanentBulkError(JobMojitoBulkError, AirflowFailException):
    """A :class:`JobMojitoBulkError` where every failure is permanent: Airflow does not retry it."""


def first_of(
    items: Sequence[str], *, separator: str = ", ", rest: str = "", limit: int = MAX_LISTED_FAILURES
) -> str:
    """The first ``limit`` items joined, and how many more: ``a, b and 3 more``.

    :param rest: said of the items left out, e.g. ``(all are in the log)``.
    """
    listed = separator.join(items[:limit])
    left_out = len(items) - limit
    if left_out <= 0:
        return listed
    return f"{listed}{separator}and {left_out} more" + (f" {rest}" if rest else "")


def _rebuild_bulk_error(
    kind: type[JobMojitoBulkError], message: str, results: list[StateChangeResult]
) -> JobMojitoBulkError:
    return kind(message, results=results)


def _brief(error: JobMojitoError | None) -> str:
    """One failure, short: the API's status and text when it sent one, else the message."""
    if error is None:  # pragma: no cover - failed results always carry an error
        return "unknown error"
    if error.status_code is not None and error.error:
        field_note = f" (field: {error.field})" if error.field else ""
        return f"{type(error).__name__} {error.status_code}: {error.error}{field_note}"
    return f"{type(error).__name__}: {str(error).rstrip('.')}"


def _shorten(text: str | None) -> str | None:
    if text is None or len(text) <= _MAX_ERROR_TEXT:
        return text
    return text[: _MAX_ERROR_TEXT - 1] + "…"


__all__ = [
    "JobMojitoArgumentError",
    "JobMojitoAuthError",
    "JobMojitoBulkError",
    "JobMojitoClientError",
    "JobMojitoConfigError",
    "JobMojitoDriftError",
    "JobMojitoError",
    "JobMojitoGuardrailError",
    "JobMojitoNotFoundError",
    "JobMojitoPermanentBulkError",
    "JobMojitoServerError",
    "JobMojitoUnavailableError",
    "JobMojitoUnexpectedAnswerError",
    "JobMojitoValidationError",
    "JobMojitoWaitError",
]
