"""A JobMojito-compatible HTTP server for offline DAG development and tests, in the spirit of
stripe-mock. Standard library only.

Start one in-process::

    with SandboxServer(positions=[{"id": "...", "status": "draft"}]) as sandbox:
        token = sandbox.issue_token()
        ...  # call sandbox.api_url with "Authorization: Bearer <token>"

or from a shell: ``python -m airflow_provider_jobmojito.sandbox --port 8080``.
"""

from __future__ import annotations

from .faults import Fault
from .ratelimit import OVER_RATE_LIMIT_BODY, SIGN_IN_CAPACITY, SIGN_IN_REFILL_PER_SECOND
from .server import DEFAULT_EMAIL, DEFAULT_PASSWORD, SandboxServer
from .state import POSITION_STATUSES, SANDBOX_MERCHANT_ID, ManualClock, Position, ValidationError
from .tokens import TokenError, decode_jwt, encode_jwt

__all__ = [
    "DEFAULT_EMAIL",
    "DEFAULT_PASSWORD",
    "OVER_RATE_LIMIT_BODY",
    "POSITION_STATUSES",
    "SANDBOX_MERCHANT_ID",
    "SIGN_IN_CAPACITY",
    "SIGN_IN_REFILL_PER_SECOND",
    "Fault",
    "ManualClock",
    "Position",
    "SandboxServer",
    "TokenError",
    "ValidationError",
    "decode_jwt",
    "encode_jwt",
]
