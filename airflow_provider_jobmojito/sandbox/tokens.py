"""HS256 JSON Web Tokens shaped like Supabase access tokens, signed and checked by the sandbox.

Standard library only: the sandbox must run where nothing but Python is installed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

#: Audience and role Supabase puts in the tokens of signed-in users.
AUTHENTICATED = "authenticated"

_HEADER = {"alg": "HS256", "typ": "JWT"}
_VERIFIED_CACHE_SIZE = 1024

TokenProblem = Literal["missing", "invalid", "expired", "revoked"]


class TokenError(Exception):
    """A bearer token the API must refuse.

    :param problem: ``"missing"``, ``"invalid"``, ``"expired"`` or ``"revoked"`` (its session was
        signed out: :meth:`TokenAuthority.revoke`).
    :param message: why, for the 401 body; it never contains the token.
    """

    def __init__(self, problem: TokenProblem, message: str) -> None:
        super().__init__(message)
        self.problem: TokenProblem = problem
        self.message = message


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def encode_jwt(claims: dict[str, Any], secret: str) -> str:
    """Sign ``claims`` as a compact HS256 JWT.

    :param claims: the payload; it must be JSON-serialisable.
    :param secret: the HMAC key.
    :return: ``header.payload.signature``, each part base64url without padding.
    """
    head = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{_b64encode(_sign(signing_input, secret.encode()))}"


def decode_jwt(
    token: str, secret: str, *, audience: str = AUTHENTICATED, now: float | None = None
) -> dict[str, Any]:
    """Check a compact HS256 JWT and return its claims.

    :param token: the compact JWT.
    :param secret: the HMAC key it must be signed with.
    :param audience: the ``aud`` claim it must carry.
    :param now: the current epoch time (for tests); defaults to :func:`time.time`.
    :raises TokenError: ``invalid`` for a malformed token, another algorithm, a bad signature or a
        wrong audience; ``expired`` when ``exp`` is not in the future.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("invalid", "Invalid JWT: not a compact JWS (header.payload.signature).")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("invalid", "Invalid JWT: malformed encoding.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("invalid", "Invalid JWT: header and payload must be JSON objects.")
    # Checking the algorithm before the signature shuts out "alg": "none" style forgeries.
    if header.get("alg") != "HS256":
        raise TokenError("invalid", "Invalid JWT: unsupported signing algorithm.")
    expected = _sign(f"{parts[0]}.{parts[1]}".encode("ascii"), secret.encode())
    if not hmac.compare_digest(expected, signature):
        raise TokenError("invalid", "Invalid JWT: signature verification failed.")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise TokenError("invalid", "Invalid JWT: wrong audience.")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenError("invalid", "Invalid JWT: no numeric exp claim.")
    if exp <= (time.time() if now is None else now):
        raise TokenError("expired", "JWT expired.")
    return claims


def user_id_for(email: str) -> str:
    """A stable user uuid for an e-mail, so every token for one user has the same ``sub``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"jobmojito-sandbox:user:{email.strip().lower()}"))


@dataclass(frozen=True)
class IssuedToken:
    """An access token and when it stops being accepted.

    :param access_token: the compact JWT.
    :param expires_at: its ``exp`` claim (epoch seconds).
    :param expires_in: seconds it was issued for (negative for an already-expired token).
    :param user_id: its ``sub`` claim.
    :param email: its ``email`` claim.
    """

    access_token: str = field(repr=False)
    expires_at: int
    expires_in: int
    user_id: str
    email: str

    def grant(self) -> dict[str, Any]:
        """The token as an OAuth token answer: ``access_token``, ``token_type``, expiry."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "expires_at": self.expires_at,
        }


class TokenAuthority:
    """Issues and checks the sandbox's access tokens, and revokes them.

    Every token carries a ``session_id``, as Supabase's do. Revoking a token signs its session out
    (:meth:`revoke`); revoking a user's sessions signs out every token this authority issued to
    that e-mail so far (:meth:`revoke_user`, Supabase's global sign-out). A revoked token is
    refused as ``"revoked"`` until it expires; tokens issued later are not affected.

    :param secret: HMAC key; a random one when ``None``, so tokens never outlive their server.
    :param lifetime: default seconds a token stays valid.
    :param issuer: the ``iss`` claim (the server's ``/auth/v1`` URL); not checked on the way in.
    """

    def __init__(self, secret: str | None = None, lifetime: int = 3600, issuer: str = "") -> None:
        self.secret = secret if secret is not None else secrets.token_urlsafe(32)
        self.lifetime = lifetime
        self.issuer = issuer
        # Token -> its verified claims, so a client reusing one token pays for the signature
        # check once; expiry is still checked on every request.
        self._verified: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        #: The sessions issued and not yet expired, by e-mail (lower case), each with its ``exp``:
        #: what revoking a user's sessions ends. Expired ones are dropped as others are issued, so
        #: a long-running sandbox keeps only what a live token may still present.
        self._sessions: dict[str, dict[str, int]] = {}
        #: Revoked sessions, each with its ``exp`` (dropped once expired: the token is refused
        #: as expired anyway).
        self._revoked: dict[str, int] = {}

    def issue(self, email: str, lifetime: int | None = None) -> IssuedToken:
        """Mint a token for ``email``.

        :param email: the ``email`` claim; ``sub`` is derived from it.
        :param lifetime: seconds until ``exp``; the default lifetime when ``None``. Zero or
            negative mints a token that is already expired.
        """
        seconds = self.lifetime if lifetime is None else lifetime
        issued_at = int(time.time())
        user_id = user_id_for(email)
        session_id = str(uuid.uuid4())
        with self._lock:
            live = {
                sid: exp
                for sid, exp in self._sessions.get(email.strip().lower(), {}).items()
                if exp > issued_at
            }
            live[session_id] = issued_at + seconds
            self._sessions[email.strip().lower()] = live
        claims = {
            "iss": self.issuer,
            "sub": user_id,
            "aud": AUTHENTICATED,
            "role": AUTHENTICATED,
            "email": email,
            "iat": issued_at,
            "exp": issued_at + seconds,
            # Two tokens minted in the same second would otherwise be byte-identical.
            "session_id": session_id,
        }
        return IssuedToken(
            access_token=encode_jwt(claims, self.secret),
            expires_at=issued_at + seconds,
            expires_in=seconds,
            user_id=user_id,
            email=email,
        )

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """Check an ``Authorization`` header value and return the token's claims.

        :param authorization: the raw header value, or ``None`` when absent.
        :raises TokenError: when the header is missing or not a bearer token, or the token is
            invalid or expired.
        """
        if not authorization:
            raise TokenError("missing", "Missing authorization header.")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("missing", "Missing bearer token: expected 'Authorization: Bearer <jwt>'.")
        token = token.strip()
        claims = self._verified.get(token)
        if claims is None:
            claims = decode_jwt(token, self.secret)
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()  # crude, but bounded and lock-free
            self._verified[token] = claims
        elif claims["exp"] <= time.time():
            raise TokenError("expired", "JWT expired.")
        if claims.get("session_id") in self._revoked:
            raise TokenError("revoked", "Invalid JWT: its session was signed out.")
        return claims

    def revoke(self, token: str) -> None:
        """Sign out the session of ``token`` (one this authority signed, expired or not).

        :raises TokenError: ``invalid`` for a token this authority did not sign, or one without a
            ``session_id``.
        """
        claims = decode_jwt(token, self.secret, now=float("-inf"))  # an expired one may be revoked too
        session_id = claims.get("session_id")
        if not isinstance(session_id, str):
            raise TokenError("invalid", "Invalid JWT: no session_id claim to revoke.")
        now = time.time()
        with self._lock:
            self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
            self._revoked[session_id] = int(claims["exp"]) if isinstance(claims.get("exp"), int) else int(now)

    def revoke_user(self, email: str) -> int:
        """Sign out every session this authority issued to ``email`` so far.

        :return: how many sessions that was (counting those already revoked).
        """
        with self._lock:
            sessions = self._sessions.pop(email.strip().lower(), {})
            self._revoked.update(sessions)
        return len(sessions)

    def forget_sessions(self) -> None:
        """Forget the sessions issued and revoked so far (a sandbox reset): tokens issued before
        keep working until they expire, as after a restart with the same secret."""
        with self._lock:
            self._sessions.clear()
            self._revoked.clear()
