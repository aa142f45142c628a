"""What an API answer means: the status-to-exception mapping, and reading its JSON.

Transport-agnostic: the client's plans (:mod:`~airflow_provider_jobmojito.plan`) hand over an
:class:`~airflow_provider_jobmojito.wire.Answer` and get a dict or a typed exception. What an
answer means for one endpoint in particular lives with the endpoint
(:mod:`~airflow_provider_jobmojito.endpoints`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoClientError,
    JobMojitoConfigError,
    JobMojitoError,
    JobMojitoNotFoundError,
    JobMojitoServerError,
    JobMojitoUnexpectedAnswerError,
    JobMojitoValidationError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_jobmojito.wire import Answer


def object_of(
    answer: Answer,
    call: str,
    *,
    auth_hint: str = "",
    secrets: Iterable[str] = (),
    server_error_hint: str = "",
) -> dict[str, Any]:
    """The JSON object of a final answer, or the typed error the answer means.

    :param call: what was called, for messages: ``POST /job-interview-set-state``.
    :param auth_hint: added to the message of a 401/403: what to check in the connection.
    :param secrets: what the request carried (the token...): scrubbed from any text of the answer
        that reaches an error message, should the API echo it.
    :param server_error_hint: added to the message of a 500: what else the endpoint means by it.
    :raises JobMojitoConfigError: on a redirect, which is never followed.
    :raises JobMojitoError: a subclass by status (see :func:`raise_for_status`); a
        :class:`JobMojitoUnexpectedAnswerError` when a 2xx body is not a JSON object.
    """
    if 300 <= answer.status < 400:
        # Following would re-send the POST elsewhere, or turn it into a GET.
        location = scrub(answer.headers.get("Location"), secrets)
        raise JobMojitoConfigError(
            f"JobMojito {call} was redirected ({answer.status}) to {location!r}: "
            "set the connection's host to the API base URL itself."
        )
    if answer.status >= 400:
        raise_for_status(
            answer, call, auth_hint=auth_hint, secrets=secrets, server_error_hint=server_error_hint
        )
    try:
        body = answer.json()
    except ValueError:
        body = _NOT_JSON
    if not isinstance(body, dict):
        # Every endpoint answers an object; anything else would fail later, less clearly.
        what = (
            "a body that is not JSON" if body is _NOT_JSON else f"a JSON {type(body).__name__}, not an object"
        )
        raise JobMojitoUnexpectedAnswerError(
            f"JobMojito answered {answer.status} to {call} with {what}.", status_code=answer.status
        )
    return body


_NOT_JSON = object()


def raise_for_status(
    answer: Answer,
    call: str,
    *,
    auth_hint: str = "",
    secrets: Iterable[str] = (),
    server_error_hint: str = "",
) -> NoReturn:
    """Raise the error an answer of 400 or more means: auth (401/403), validation (422), not
    found (404), another 4xx, or a server error (5xx)."""
    status = answer.status
    error, field = error_of(answer, secrets)
    detail = f": {error}" if error else ""
    if field:
        detail += f" (field: {field})"
    message = f"JobMojito answered {status} to {call}{detail}."
    kwargs: dict[str, Any] = {"status_code": status, "error": error, "field": field}
    if status in (401, 403):
        raise JobMojitoAuthError(message + auth_hint, **kwargs)
    if status == 422:
        raise JobMojitoValidationError(message, **kwargs)
    if status == 404:
        raise JobMojitoNotFoundError(message, **kwargs)
    if status < 500:
        raise JobMojitoClientError(message, **kwargs)
    raise JobMojitoServerError(message + (server_error_hint if status == 500 else ""), **kwargs)


def json_of(answer: Answer, call: str) -> Any:
    """The body as JSON, or a :class:`JobMojitoError` that does not show the body."""
    try:
        return answer.json()
    except ValueError:
        raise JobMojitoError(
            f"JobMojito answered {answer.status} to {call} with a body that is not JSON.",
            status_code=answer.status,
        ) from None


def error_of(answer: Answer, secrets: Iterable[str] = ()) -> tuple[str | None, str | None]:
    """The API's ``error`` text and ``name`` of the field, if the body has them, scrubbed.

    Only these two short fields are kept: a whole body could echo what was sent. Even so an
    error text may quote the request (``invalid token: eyJ...``): ``secrets`` and whatever Airflow's
    secret masker knows are replaced with ``***``.
    Supabase's auth endpoints spell the text ``error_description`` or ``msg``.
    """
    try:
        body = answer.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    texts = (body.get(key) for key in ("error_description", "msg", "error", "message"))
    text = next((value for value in texts if isinstance(value, str)), None)
    field = body.get("name") if isinstance(body.get("name"), str) else None
    return scrub(text, secrets), scrub(field, secrets)


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """``text`` with each of ``secrets`` (and each secret Airflow's masker knows) as ``***``."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    from airflow.providers.common.compat.sdk import redact

    redacted = redact(text)
    return redacted if isinstance(redacted, str) else text
