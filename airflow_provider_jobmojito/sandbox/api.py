"""The JobMojito API routes (``/functions/v1``) and Supabase's password grant (``/auth/v1``)."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import TYPE_CHECKING, Any

from . import results
from .messages import Request, Response, json_response
from .ratelimit import OVER_RATE_LIMIT_BODY
from .state import (
    POSITION_STATUSES,
    POSITION_TYPES,
    SANDBOX_MERCHANT_ID,
    UnknownPositionError,
    ValidationError,
    canonical_uuid,
    check_status,
)
from .tokens import TokenError

if TYPE_CHECKING:
    from .context import Route, SandboxContext

_SET_STATE_KEYS = frozenset({"position_id", "status", "is_embedded"})
#: The largest integer parameter: PostgreSQL's ``bigint``, which ``LIMIT`` and ``OFFSET`` take behind
#: the real API. ``offset`` has no other upper bound, so its message names this one.
MAX_INT_PARAM = 2**63 - 1
#: ASCII digits only (``\d`` also matches other scripts' digits, which ``int`` accepts), and few
#: enough that ``int`` never meets its digit limit: 19 digits hold :data:`MAX_INT_PARAM`, anything
#: longer is out of range.
_INT_RE = re.compile(r"[+-]?[0-9]{1,19}")

#: ``JobInterviewGetResponse`` fields the sandbox has no data for; the contract requires them,
#: so they are present and null (or empty), as for a freshly created interview.
_GET_NULL_FIELDS = (
    "calc_definition_json",
    "stage",
    "code",
    "interview_location",
    "cover_image_url",
    "interview_template_id",
    "interview_template_type",
    "is_voice_only",
    "knowledge_base_store_id",
    "mojito_language_code",
    "speech_language_code",
    "speech_language_name",
    "recording",
    "recording_full_session",
    "type_credit",
    "result_view",
    "candidate_video_introduction",
    "description",
    "interview_description_long",
    "candidate_expectations",
    "candidate_expectations_json",
    "result_scoring",
    "creation_parameters",
    "interview_department",
    "interview_salary",
    "interview_available_till",
    "recruiter_profile_id",
    "slug",
    "coach_plan",
    "interview_conversation_speed",
    "max_followups",
    "max_duration",
    "questions_random_subset",
    "required_pronunciation",
    "result_enable_edit_transcript",
    "pdf_export_auto_config",
)
_LIST_NULL_FIELDS = (
    "emoji",
    "type_avatar",
    "mojito_language_code",
    "speech_language_code",
    "recording",
    "recording_full_session",
    "billing_single_position_end_at",
    "cover_image_url",
    "interview_last",
    "calc_duration",
)


def _unprocessable(error: ValidationError) -> Response:
    return json_response(422, error.body())


def check_credentials(app: SandboxContext, request: Request) -> Response | None:
    """The 401 a request must get before any routing, or ``None`` when it may proceed.

    API routes need a valid, unexpired bearer JWT. Auth routes need the ``apikey`` header only
    when the sandbox has an anon key (the API itself never needs one, as with JobMojito).
    """
    if request.path.startswith("/functions/v1/"):
        try:
            app.tokens.verify(request.header("Authorization"))
        except TokenError as error:
            challenge = 'Bearer realm="jobmojito-sandbox", error="invalid_token"'
            return json_response(401, {"error": error.message}, {"WWW-Authenticate": challenge})
    elif request.path.startswith("/auth/v1/") and app.anon_key is not None:
        apikey = request.header("apikey") or ""
        if not hmac.compare_digest(apikey.encode(), app.anon_key.encode()):
            return json_response(401, {"message": "Invalid API key"})
    return None


def _set_state_body(request: Request) -> tuple[str, str | None, bool | None]:
    try:
        body = request.json()
    except ValueError:
        raise ValidationError("body", "Body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise ValidationError("body", "Body must be a JSON object.")
    # Unknown keys first: a misspelt "is_embeded" is the likely cause of any later error.
    for key in body:
        if key not in _SET_STATE_KEYS:
            raise ValidationError(key, "Unknown field.")
    position_id = canonical_uuid(body.get("position_id"), "position_id")
    status = body.get("status")
    if status is not None:
        check_status(status)
    is_embedded = body.get("is_embedded")
    if is_embedded is not None and not isinstance(is_embedded, bool):
        raise ValidationError("is_embedded", "Must be a boolean.")
    if status is None and is_embedded is None:
        raise ValidationError("status", "Provide at least one of status or is_embedded.")
    return position_id, status, is_embedded


def set_state(app: SandboxContext, request: Request) -> Response:
    """``POST /functions/v1/job-interview-set-state``."""
    try:
        position_id, status, is_embedded = _set_state_body(request)
    except ValidationError as error:
        return _unprocessable(error)
    try:
        return json_response(200, app.store.set_state(position_id, status, is_embedded))
    except UnknownPositionError:
        # The real API folds unknown ids and authorization failures into a 500.
        return json_response(500, {"error": f"Could not resolve interview or position {position_id}."})


def get_position(app: SandboxContext, request: Request) -> Response:
    """``GET /functions/v1/job-interview-get?position_id=...``; never shows embed credentials."""
    try:
        position_id = canonical_uuid(request.query.get("position_id"), "position_id")
    except ValidationError as error:
        return _unprocessable(error)
    try:
        position = app.store.get(position_id)
    except UnknownPositionError:
        return json_response(404, {"error": "No interview or position found for the given id."})
    payload: dict[str, Any] = {
        "id": position["id"],
        "name": position["name"],
        "status": position["status"],
        "type": position["type"],
        "visibility": position["visibility"],
        "is_multistage": False,
        "merchant_id": position["merchant_id"],
        "created_at": position["created_at"],
        "updated_at": position["updated_at"],
        "questions": [],
        "tags": [],
    }
    payload.update(dict.fromkeys(_GET_NULL_FIELDS))
    return json_response(200, payload)


def _int_param(request: Request, name: str, default: int, low: int, high: int = MAX_INT_PARAM) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = int(raw) if _INT_RE.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise ValidationError(name, f"Must be an integer between {low} and {high}.")
    return value


def _choice_param(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise ValidationError(name, f"Must be one of: {', '.join(choices)}.")
    return value


def _list_row(position: dict[str, Any]) -> dict[str, Any]:
    row = {key: position[key] for key in ("id", "merchant_id", "name", "type", "status", "visibility")}
    row.update(dict.fromkeys(_LIST_NULL_FIELDS))
    row.update(
        environment="test",
        is_ats=False,
        is_multi_stage=False,
        billing_single_position=False,
        interview_count=0,
        created_at=position["created_at"],
        updated_at=position["updated_at"],
    )
    return row


def list_positions(app: SandboxContext, request: Request) -> Response:
    """``GET /functions/v1/merchant-interview-list``, newest ``updated_at`` first.

    ``show_public``, ``show_demo`` and ``filter_emoji`` are validated but change nothing: the
    sandbox has no public, demo or emoji-marked interviews.
    """
    try:
        status = _choice_param(request, "status", POSITION_STATUSES)
        type_ = _choice_param(request, "type", POSITION_TYPES) or "interview"
        _choice_param(request, "show_public", ("true", "false"))
        _choice_param(request, "show_demo", ("true", "false"))
        limit = _int_param(request, "limit", 50, 1, 1000)
        offset = _int_param(request, "offset", 0, 0)
        merchant_id = request.query.get("merchant_id")
        if merchant_id is not None:
            merchant_id = canonical_uuid(merchant_id, "merchant_id")
    except ValidationError as error:
        return _unprocessable(error)
    if merchant_id is not None and merchant_id != SANDBOX_MERCHANT_ID:
        return json_response(403, {"error": "Caller is not permitted to read this merchant."})
    matching = app.store.query(status=status, type_=type_, filter_text=request.query.get("filter_text"))
    page = [_list_row(p) for p in matching[offset : offset + limit]]
    pagination = {
        "total": len(matching),
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(page) < len(matching),
    }
    return json_response(200, {"data": page, "pagination": pagination})


def _grant_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})


def password_grant(app: SandboxContext, request: Request) -> Response:
    """``POST /auth/v1/token?grant_type=password``, answered as Supabase (GoTrue) does.

    As in GoTrue, the rate limit comes after the grant type check and before the body is read,
    so wrong credentials use up the bucket too; every attempt that reaches it is counted.
    """
    grant_type = request.query.get("grant_type")
    if grant_type != "password":
        return _grant_error("unsupported_grant_type", "Only grant_type=password is supported.")
    if not app.sign_ins.admit(request.client):
        return json_response(429, OVER_RATE_LIMIT_BODY)
    response = _password_grant(app, request)
    app.sign_ins.record(succeeded=response.status == 200)
    return response


def _password_grant(app: SandboxContext, request: Request) -> Response:
    try:
        body = request.json()
    except ValueError:
        body = None
    email = body.get("email") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        return _grant_error("invalid_request", "A JSON body with email and password is required.")
    email_ok = email.strip().lower() == app.email.strip().lower()
    password_ok = hmac.compare_digest(password.encode(), app.password.encode())
    if not (email_ok and password_ok):
        return _grant_error("invalid_grant", "Invalid login credentials")
    issued = app.tokens.issue(app.email)
    return json_response(
        200,
        {
            **issued.grant(),
            # Opaque and never accepted back: the sandbox has no refresh grant.
            "refresh_token": secrets.token_urlsafe(16),
            "user": {
                "id": issued.user_id,
                "email": issued.email,
                "aud": "authenticated",
                "role": "authenticated",
            },
        },
    )


ROUTES: dict[str, dict[str, Route]] = {
    "/functions/v1/job-interview-set-state": {"POST": set_state},
    "/functions/v1/job-interview-get": {"GET": get_position},
    "/functions/v1/merchant-interview-list": {"GET": list_positions},
    "/auth/v1/token": {"POST": password_grant},
}
# The results routes live with the results (:mod:`.results`).
ROUTES.update(results.API_ROUTES)
