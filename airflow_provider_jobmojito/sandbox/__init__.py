"""A JobMojito-compatible HTTP server for offline DAG development and tests, in the spirit of
stripe-mock. Standard library only.

Start one in-process::

    with SandboxServer(positions=[{"id": "...", "status": "draft"}]) as sandbox:
        token = sandbox.issue_token()
        ...  # call sandbox.api_url with "Authorization: Bearer <token>"

or from a shell: ``python -m airflow_provider_jobmojito.sandbox --port 8080``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import Fault
    from .ratelimit import OVER_RATE_LIMIT_BODY, SIGN_IN_CAPACITY, SIGN_IN_REFILL_PER_SECOND
    from .server import DEFAULT_EMAIL, DEFAULT_PASSWORD, SandboxServer
    from .state import POSITION_STATUSES, SANDBOX_MERCHANT_ID, ManualClock, Position, ValidationError
    from .tokens import TokenError, decode_jwt, encode_jwt

#: Where each name of the package lives. They are imported on first use (PEP 562), not with the
#: package: pytest imports the package for its plugin (``sandbox.pytest_plugin``) in every session
#: of an environment with the provider, and a session that uses no sandbox should not pay for one.
_LAZY = {
    "Fault": "faults",
    "OVER_RATE_LIMIT_BODY": "ratelimit",
    "SIGN_IN_CAPACITY": "ratelimit",
    "SIGN_IN_REFILL_PER_SECOND": "ratelimit",
    "DEFAULT_EMAIL": "server",
    "DEFAULT_PASSWORD": "server",
    "SandboxServer": "server",
    "POSITION_STATUSES": "state",
    "SANDBOX_MERCHANT_ID": "state",
    "ManualClock": "state",
    "Position": "state",
    "ValidationError": "state",
    "TokenError": "tokens",
    "decode_jwt": "tokens",
    "encode_jwt": "tokens",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
