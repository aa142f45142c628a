"""Access tokens: reading a JWT's expiry, and the per-process cache of signed-in tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from dataclasses import dataclass, field

import pendulum


def jwt_expiry(token: str) -> pendulum.DateTime | None:
    """The ``exp`` claim of a JWT as a UTC time, or ``None`` for an opaque token or no ``exp``.

    The signature is not checked: only the API can check it, and the expiry is read only to refuse
    a token the API would refuse anyway, without sending it.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return pendulum.from_timestamp(exp, tz="UTC")
    except (OverflowError, OSError, ValueError):  # an exp beyond any calendar
        return None


@dataclass(frozen=True)
class SignedInToken:
    """An access token got by signing in, and when it stops being worth reusing."""

    access_token: str = field(repr=False)
    expires_at: pendulum.DateTime

    def is_fresh(self) -> bool:
        return pendulum.now("UTC") < self.expires_at


class SignInCache:
    """Signed-in access tokens shared by every hook of this process.

    Keyed by Supabase URL, e-mail and a digest of the password, so a changed password signs in
    anew. Refresh tokens are deliberately not kept: Supabase rotates them on use, so parallel
    workers refreshing the same one would invalidate each other's sessions.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], SignedInToken] = {}
        self.lock = threading.Lock()

    @staticmethod
    def key(supabase_url: str, email: str, password: str) -> tuple[str, str, str]:
        return supabase_url, email, hashlib.sha256(password.encode()).hexdigest()

    def get(self, key: tuple[str, str, str]) -> SignedInToken | None:
        token = self._tokens.get(key)
        return token if token is not None and token.is_fresh() else None

    def put(self, key: tuple[str, str, str], token: SignedInToken) -> None:
        self._tokens[key] = token

    def discard(self, key: tuple[str, str, str], access_token: str) -> None:
        """Forget ``access_token`` unless another thread has already replaced (or forgotten) it."""
        with self.lock:
            current = self._tokens.get(key)
            if current is not None and current.access_token == access_token:
                del self._tokens[key]

    def clear(self) -> None:
        self._tokens.clear()


SIGN_IN_CACHE = SignInCache()
