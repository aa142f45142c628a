"""The control API under ``/_sandbox``: seed state, inject faults, read the request log.

No authentication and never logged: it belongs to the test or demo driving the sandbox, not to
the client under test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import results
from .faults import parse_fault
from .messages import json_response
from .state import UnknownPositionError, ValidationError, canonical_uuid, check_status, parse_seed
from .tokens import TokenError

if TYPE_CHECKING:
    from .context import Route, SandboxContext
    from .messages import Request, Response


def _body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        raise ValidationError("body", "Body must be JSON.") from None


def seed_positions(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/positions``: add or overwrite positions."""
    try:
        positions = parse_seed(_body(request))
    except ValidationError as error:
        return json_response(422, error.body())
    return json_response(200, {"positions": app.store.seed(positions)})


def list_positions(app: SandboxContext, _request: Request) -> Response:
    """``GET /_sandbox/positions``: every position, embed credentials included."""
    return json_response(200, {"positions": app.store.all()})


def get_position(app: SandboxContext, request: Request) -> Response:
    """``GET /_sandbox/positions/<id>``."""
    try:
        position_id = canonical_uuid(request.path.rsplit("/", 1)[1], "id")
        return json_response(200, app.store.get(position_id))
    except (ValidationError, UnknownPositionError):
        return json_response(404, {"error": "No such position."})


def set_position_status(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/positions/<id>/status`` ``{"status": ...}``: change a status as JobMojito's
    admin app does (a recruiter closing a position), not through set-state; moves ``updated_at``.

    Answers the position as stored; 404 for an unknown id, 422 for a bad body.
    """
    try:
        position_id = canonical_uuid(request.path.split("/")[3], "id")
    except ValidationError:
        return json_response(404, {"error": "No such position."})
    try:
        body = _body(request)
        if not isinstance(body, dict):
            raise ValidationError("body", "Body must be a JSON object.")
        for key in body:
            if key != "status":
                raise ValidationError(str(key), "Unknown field.")
        status = check_status(body.get("status"))
    except ValidationError as error:
        return json_response(422, error.body())
    try:
        return json_response(200, app.store.admin_set_status(position_id, status))
    except UnknownPositionError:
        return json_response(404, {"error": "No such position."})


def list_requests(app: SandboxContext, _request: Request) -> Response:
    """``GET /_sandbox/requests``: the API and auth requests received, secrets redacted."""
    return json_response(200, {"requests": app.log.entries()})


def clear_requests(app: SandboxContext, _request: Request) -> Response:
    """``DELETE /_sandbox/requests``."""
    app.log.clear()
    return json_response(200, {"ok": True})


def reset(app: SandboxContext, _request: Request) -> Response:
    """``POST /_sandbox/reset``: forget positions, requests, faults and sign-in counts."""
    app.reset()
    return json_response(200, {"ok": True})


def add_faults(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/faults``: queue one fault, or a list of them (all or none)."""
    try:
        body = _body(request)
        specs = body if isinstance(body, list) else [body]
        faults = [parse_fault(spec) for spec in specs]
    except ValidationError as error:
        return json_response(422, error.body())
    for fault in faults:
        app.faults.add(fault)
    return json_response(200, {"faults": app.faults.pending()})


def list_faults(app: SandboxContext, _request: Request) -> Response:
    """``GET /_sandbox/faults``: the queue, head first."""
    return json_response(200, {"faults": app.faults.pending()})


def clear_faults(app: SandboxContext, _request: Request) -> Response:
    """``DELETE /_sandbox/faults``."""
    app.faults.clear()
    return json_response(200, {"ok": True})


def issue_token(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/tokens``: mint a token without signing in (body optional)."""
    try:
        body = _body(request) if request.body else {}
    except ValidationError as error:
        return json_response(422, error.body())
    if not isinstance(body, dict):
        return json_response(422, {"error": "Body must be a JSON object.", "name": "body"})
    lifetime, email = body.get("lifetime"), body.get("email", app.email)
    if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int)):
        return json_response(422, {"error": "Must be an integer number of seconds.", "name": "lifetime"})
    if not isinstance(email, str) or not email:
        return json_response(422, {"error": "Must be a non-empty string.", "name": "email"})
    issued = app.tokens.issue(email, lifetime)
    return json_response(200, issued.grant())


def revoke_tokens(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/tokens/revoke``: sign sessions out, as a user or an admin does in Supabase.

    ``{"token": "<jwt>"}`` revokes that token's session; ``{"email": "..."}`` every session issued
    to that e-mail so far (a global sign-out); exactly one of them. Answers ``{"revoked": n}``; a
    revoked token is refused by the API (401) from then on. 422 for a token the sandbox did not sign.
    """
    try:
        body = _body(request)
        if not isinstance(body, dict) or len(body) != 1 or not body.keys() <= {"token", "email"}:
            raise ValidationError("body", 'Give exactly one of "token" and "email".')
        [(name, value)] = body.items()
        if not isinstance(value, str) or not value:
            raise ValidationError(name, "Must be a non-empty string.")
    except ValidationError as error:
        return json_response(422, error.body())
    if name == "email":
        return json_response(200, {"revoked": app.tokens.revoke_user(value)})
    try:
        app.tokens.revoke(value)
    except TokenError as error:
        return json_response(422, {"error": error.message, "name": "token"})
    return json_response(200, {"revoked": 1})


def change_password(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/password`` ``{"password": "..."}``: the password the password grant accepts
    from now on (a user changing it in JobMojito). Tokens already issued stay valid: revoke them
    too (``/_sandbox/tokens/revoke``) to end the old sessions."""
    try:
        body = _body(request)
        if not isinstance(body, dict) or set(body) != {"password"}:
            raise ValidationError("body", 'Give "password" alone.')
        password = body["password"]
        if not isinstance(password, str) or not password:
            raise ValidationError("password", "Must be a non-empty string.")
    except ValidationError as error:
        return json_response(422, error.body())
    app.password = password
    return json_response(200, {"ok": True})


def sign_in_counts(app: SandboxContext, _request: Request) -> Response:
    """``GET /_sandbox/sign-ins``: ``{total, succeeded, failed, refused}`` password-grant attempts."""
    return json_response(200, app.sign_ins.counts())


def clear_sign_ins(app: SandboxContext, _request: Request) -> Response:
    """``DELETE /_sandbox/sign-ins``: zero the counts and refill every bucket."""
    app.sign_ins.reset()
    return json_response(200, {"ok": True})


def sign_in_limit(app: SandboxContext, _request: Request) -> Response:
    """``GET /_sandbox/sign-in-limit``: ``{enabled, capacity, refill_per_second}``."""
    return json_response(200, app.sign_ins.settings())


def configure_sign_in_limit(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/sign-in-limit``: change any of ``enabled``, ``capacity`` and
    ``refill_per_second``; every bucket starts full again. Answers the settings."""
    try:
        body = _body(request)
        if not isinstance(body, dict):
            raise ValidationError("body", "Body must be a JSON object.")
        for key in body:
            if key not in ("enabled", "capacity", "refill_per_second"):
                raise ValidationError(str(key), "Unknown field.")
        enabled = body.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ValidationError("enabled", "Must be a boolean.")
        settings = app.sign_ins.configure(
            enabled=enabled, capacity=body.get("capacity"), refill_per_second=body.get("refill_per_second")
        )
    except ValidationError as error:
        return json_response(422, error.body())
    return json_response(200, settings)


def health(_app: SandboxContext, _request: Request) -> Response:
    """``GET /_sandbox/health``."""
    return json_response(200, {"ok": True})


ROUTES: dict[str, dict[str, Route]] = {
    "/_sandbox/positions": {"GET": list_positions, "POST": seed_positions},
    "/_sandbox/positions/{id}": {"GET": get_position},
    "/_sandbox/positions/{id}/status": {"POST": set_position_status},
    "/_sandbox/requests": {"GET": list_requests, "DELETE": clear_requests},
    "/_sandbox/reset": {"POST": reset},
    "/_sandbox/faults": {"GET": list_faults, "POST": add_faults, "DELETE": clear_faults},
    "/_sandbox/tokens": {"POST": issue_token},
    "/_sandbox/tokens/revoke": {"POST": revoke_tokens},
    "/_sandbox/password": {"POST": change_password},
    "/_sandbox/sign-ins": {"GET": sign_in_counts, "DELETE": clear_sign_ins},
    "/_sandbox/sign-in-limit": {"GET": sign_in_limit, "POST": configure_sign_in_limit},
    "/_sandbox/health": {"GET": health},
}
ROUTES.update(results.CONTROL_ROUTES)
