"""Access tokens: the token provider the client asks for a bearer token, and what it relies on.

:class:`TokenProvider` serves both modes of a connection: a static token (checked for expiry
before it is sent) and sign-in with e-mail and password (Supabase's password grant, cached per
process and on the host). It sends nothing itself: for a sign-in it hands the client's plan a
:class:`~airflow_provider_jobmojito.wire.Request` to send and reads the answer, so the sync and
async drivers share every rule here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

import pendulum

from airflow_provider_jobmojito import exceptions, token_cache
from airflow_provider_jobmojito.answers import error_of, json_of
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoConfigError,
    JobMojitoError,
    JobMojitoServerError,
)
from airflow_provider_jobmojito.masking import mask
from airflow_provider_jobmojito.token_cache import FailedSignIn, SignedInToken, warn_once
from airflow_provider_jobmojito.wire import Request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_jobmojito.settings import HookSettings
    from airflow_provider_jobmojito.wire import Answer

#: Stand for the URL and the e-mail in a remembered failure's message (put back when read).
_URL_PLACEHOLDER, _LOGIN_PLACEHOLDER = "<supabase_url>", "<login>"


def _scrubbed(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


#: A static token this close to its expiry is still sent, with a warning.
EXPIRY_WARNING_WINDOW = pendulum.duration(minutes=10)
_EXPIRY_WARNING_SECONDS = EXPIRY_WARNING_WINDOW.total_seconds()
#: A signed-in token is reused until this long before it expires (or a tenth of its life).
SIGN_IN_REUSE_MARGIN = pendulum.duration(seconds=60)
#: The longest life a sign-in answer's ``expires_in`` is believed for (Supabase's maximum is a week).
_MAX_TOKEN_LIFETIME = 7 * 24 * 3600

#: How Supabase's password grant refuses credentials (400 invalid_grant, 422 a malformed
#: e-mail, 401/403 a wrong anon key); any other answer means the request went to the wrong place.
_SIGN_IN_REFUSALS = frozenset({400, 401, 403, 422})


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


class SignInCache:
    """Signed-in access tokens shared by every hook of this process, and one lock per account.

    Keyed by Supabase URL, e-mail and a digest of the password, so a changed password signs in
    anew. Refresh tokens are deliberately not kept: Supabase rotates them on use, so parallel
    workers refreshing the same one would invalidate each other's sessions.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], SignedInToken] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self.lock = threading.Lock()

    def lock_for(self, key: tuple[str, str, str]) -> threading.Lock:
        """The account's sign-in lock in this process: held across a sign-in, so that threads
        (and coroutines, through a worker thread) finding no token sign in once. Accounts do not
        wait for each other."""
        with self.lock:
            return self._locks.setdefault(key, threading.Lock())

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held a lock at the fork; it does not exist here, so
        # the lock would never be released. The tokens stay valid: they are only strings.
        self.lock = threading.Lock()
        self._locks = {}

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

    def forget(self, key: tuple[str, str, str]) -> None:
        """Forget the account's token, whatever it is (its credentials left the connection)."""
        with self.lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        self._tokens.clear()


#: Re-exported: a signed-in token is the token cache's record (1.0.0 defined it here).
__all__ = ["SIGN_IN_CACHE", "SignInCache", "SignedInToken", "TokenProvider", "jwt_expiry"]


SIGN_IN_CACHE = SignInCache()
os.register_at_fork(after_in_child=SIGN_IN_CACHE._after_fork_in_child)


class TokenProvider:
    """The bearer token for a connection's calls: a static token, or one got by signing in.

    The client's plan (:meth:`~airflow_provider_jobmojito.plan.Calls.token`) asks :meth:`current`;
    ``None`` means "sign in first": it sends :meth:`sign_in_request` holding
    :meth:`sign_in_locks` (so that threads, coroutines and processes finding no token sign in
    once) and hands the answer to :meth:`accept_sign_in`. Holding the locks, it first asks
    :meth:`recall_failed_sign_in` whether another process's sign-in has just failed (then it raises
    that error at once), and hands a failure of its own to :meth:`remember_failed_sign_in`. After a
    401 it calls :meth:`refused`, which says whether signing in again may help. Reading the host's
    cache and registering a token with the masker may block: an async driver calls these methods in
    a worker thread. Trouble with the host's cache (its folder, its files) never fails a call: the
    process goes on with its own cache, and warns once.

    :param settings: the connection's settings.
    :param conn_id: the connection's id, for messages.
    :param log: where to log (the hook's logger, so lines land in the task log).
    """

    def __init__(self, settings: HookSettings, conn_id: str, log: Any = None) -> None:
        self.settings = settings
        self.conn_id = conn_id
        self.log = log or logging.getLogger(__name__)
        self._warned_expiry_for: str | None = None
        # The static token's expiry, as a pendulum time and a POSIX time, read once.
        self._static_expiry: tuple[pendulum.DateTime | None, float | None] | None = None
        self._key = (
            SIGN_IN_CACHE.key(settings.supabase_url, settings.login, settings.password)
            if settings.signs_in
            else None
        )
        # Shared by the processes of this host: one sign-in for many task processes.
        self._host = token_cache.configured() if settings.signs_in else None

    @property
    def signs_in(self) -> bool:
        """Whether tokens come from signing in (rather than the connection's password)."""
        return self.settings.signs_in

    @property
    def account(self) -> tuple[str, str, str] | None:
        """Who signs in: Supabase URL, e-mail and a digest of the password (``None``: a static token)."""
        return self._key

    @contextlib.contextmanager
    def sign_in_locks(self) -> Iterator[None]:
        """Held across a sign-in: the account's lock in this process, then its lock on this host,
        so that threads and processes finding no token together sign in once."""
        if self._key is None:
            yield
            return
        with contextlib.ExitStack() as held:
            held.enter_context(SIGN_IN_CACHE.lock_for(self._key))
            if self._host is not None:
                try:
                    held.enter_context(self._host.lock(self._key))
                except OSError as error:
                    # Threads of this process still sign in once; other processes may too.
                    self._host_trouble("lock sign-ins across processes", error)
            yield

    def current(self) -> str | None:
        """A token to send now, or ``None`` when a sign-in is needed.

        :raises JobMojitoConfigError: when the connection has no token at all.
        :raises JobMojitoAuthError: when the static token has expired (nothing is sent).
        """
        if self._key is not None:
            cached = SIGN_IN_CACHE.get(self._key)
            if cached is None and self._host is not None:
                try:
                    cached = self._host.get(self._key)
                except OSError as error:  # the reader checks; this is for what no one foresaw
                    self._host_trouble("read the shared token", error)
                if cached is not None:
                    # Another process signed in: this one has not registered the token yet.
                    mask(cached.access_token)
                    SIGN_IN_CACHE.put(self._key, cached)
            return None if cached is None else cached.access_token
        token = self.settings.password
        if not token:
            raise JobMojitoConfigError(
                f"Connection {self.conn_id!r} has no access token: put it in the password "
                "field, or set login (e-mail) and password to sign in."
            )
        self._check_static_token(token)
        return token

    def refused(self, token: str) -> bool:
        """The API answered 401 to ``token``: forget it; whether signing in again may help."""
        if self._key is None:
            return False
        # The host's copy first: a thread reading the host cache meanwhile could otherwise put
        # the refused token back into this process's cache.
        if self._host is not None:
            try:
                self._host.discard(self._key, token)
            except OSError as error:
                self._host_trouble("forget the refused token", error)
        SIGN_IN_CACHE.discard(self._key, token)
        return True

    def forget(self) -> None:
        """The connection no longer holds these credentials (it was changed): forget the token
        signed in with them, in this process and on this host, so that a replaced password's
        session is not kept for anyone. Another process still using them signs in again. May
        block (the host's cache): an async caller calls it in a worker thread."""
        if self._key is None:
            return
        SIGN_IN_CACHE.forget(self._key)
        if self._host is not None:
            try:
                self._host.forget(self._key)
            except OSError as error:
                self._host_trouble("forget the replaced credentials' token", error)

    def sign_in_request(self) -> Request:
        """Supabase's password grant: trade the e-mail and password for an access token."""
        settings = self.settings
        headers = {"apikey": settings.supabase_anon_key} if settings.supabase_anon_key else {}
        return Request.post_json(
            f"{settings.supabase_url}/auth/v1/token?grant_type=password",
            {"email": settings.login, "password": settings.password},
            headers=headers,
            what="Supabase sign-in",
        )

    def accept_sign_in(self, answer: Answer) -> str:
        """Read a sign-in answer: cache and mask its token and return it, or raise why not (and
        remember why, briefly, for the processes waiting for the locks)."""
        try:
            return self._accept_sign_in(answer)
        except JobMojitoError as error:
            self.remember_failed_sign_in(error)
            raise

    def _accept_sign_in(self, answer: Answer) -> str:
        if answer.status >= 300:
            self._raise_for_sign_in(answer)
        what = "Supabase sign-in"
        body = json_of(answer, what)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise JobMojitoAuthError(f"{what} answered without an access_token.")
        mask(token)
        now = pendulum.now("UTC")
        # expires_in is relative, so a local clock that runs ahead cannot make every cached
        # token look expired; the JWT's absolute exp is the fallback.
        lifetime = body.get("expires_in")
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
            expires_at = now.add(seconds=float(min(lifetime, _MAX_TOKEN_LIFETIME)))
        else:
            expires_at = jwt_expiry(token) or now.add(hours=1)
        margin = min(SIGN_IN_REUSE_MARGIN, (expires_at - now) / 10)
        self.log.info("Signed in to JobMojito as %s; token valid until %s.", self.settings.login, expires_at)
        assert self._key is not None  # only sign-in mode signs in
        signed_in = SignedInToken(access_token=token, expires_at=expires_at - margin)
        SIGN_IN_CACHE.put(self._key, signed_in)
        if self._host is not None:
            try:
                self._host.forget_failure(self._key)
                self._host.put(self._key, signed_in)
            except OSError as error:  # a full disk: this process keeps its token all the same
                self._host_trouble("share the signed-in token", error)
        return token

    def recall_failed_sign_in(self) -> None:
        """Raise the error of a sign-in that another process (or thread) of this host has just
        seen fail with these very credentials, rather than sign in again; call it holding
        :meth:`sign_in_locks`.

        :raises JobMojitoError: the remembered error (its class, status and message), with a note
            of when the next sign-in will be tried.
        """
        if self._key is None or self._host is None:
            return
        try:
            failure = self._host.failure(self._key, self._fingerprint())
        except OSError as error:
            self._host_trouble("read a failed sign-in", error)
            return
        if failure is None:
            return
        error_class = getattr(exceptions, failure.kind)
        settings = self.settings
        message = failure.message.replace(_URL_PLACEHOLDER, settings.supabase_url)
        message = message.replace(_LOGIN_PLACEHOLDER, settings.login)
        seconds = max(failure.until - self._host.clock(), 0.0)
        self.log.warning(
            "Not signing in: a sign-in with the same credentials failed on this host moments ago; "
            "the next one will be tried in %.0f s.",
            seconds,
        )
        raise error_class(
            f"{message} (A sign-in on this host failed the same way moments ago; the next one "
            f"will be tried in {seconds:.0f} s.)",
            status_code=failure.status_code,
            error=failure.error,
        )

    def remember_failed_sign_in(self, error: JobMojitoError) -> None:
        """Remember ``error``, which a sign-in just raised, for the processes waiting for the
        locks (briefly; see :mod:`~airflow_provider_jobmojito.token_cache`); call it holding
        :meth:`sign_in_locks`. Errors other than the sign-in service's answers are not kept."""
        kind = type(error).__name__
        if self._key is None or self._host is None or kind not in token_cache.REMEMBERED_FAILURES:
            return
        if getattr(exceptions, kind, None) is not type(error):
            return  # a subclass of the same name elsewhere: not one to rebuild
        settings = self.settings
        message = _scrubbed(str(error), self.secrets())
        # Rebuilt from the reader's own settings: the folder shows neither URL nor e-mail.
        message = message.replace(settings.supabase_url, _URL_PLACEHOLDER)
        if settings.login:
            message = message.replace(settings.login, _LOGIN_PLACEHOLDER)
        failure = FailedSignIn(
            kind=kind,
            status_code=error.status_code,
            error=None if error.error is None else _scrubbed(error.error, self.secrets()),
            message=message,
            until=self._host.clock() + token_cache.FAILED_SIGN_IN_MEMORY[kind],
        )
        try:
            self._host.remember_failure(self._key, self._fingerprint(), failure)
        except OSError as trouble:
            self._host_trouble("remember the failed sign-in", trouble)

    def _fingerprint(self) -> str:
        """A digest of every credential a sign-in sends: changing any of them ends the memory
        of a failed sign-in at once."""
        settings = self.settings
        parts = (settings.supabase_url, settings.login, settings.password, settings.supabase_anon_key or "")
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _host_trouble(self, what: str, error: OSError) -> None:
        """The host's cache failed us: go on with this process's cache, and say so once."""
        assert self._host is not None
        warn_once(
            self.log,
            self._host.directory,
            "Could not %s in the token cache folder %s (%s): this process keeps its own cache of "
            "signed-in tokens, and other processes may sign in again.",
            what,
            self._host.directory,
            error,
        )

    def secrets(self, token: str | None = None) -> tuple[str, ...]:
        """What a request may carry that no message may show: ``token``, the password, the anon key."""
        settings = self.settings
        return tuple(secret for secret in (token, settings.password, settings.supabase_anon_key) if secret)

    def auth_hint(self) -> str:
        """What to check when the API refuses the token."""
        if self.signs_in:
            return " The signed-in account may not use this API, or its session was revoked."
        return (
            f" Check the access token in connection {self.conn_id!r}: it may be revoked, "
            "signed out, or belong to another environment."
        )

    def _check_static_token(self, token: str) -> None:
        """Refuse an expired JWT before sending it; warn once when it is about to expire."""
        if self._static_expiry is None:
            expiry = jwt_expiry(token)
            self._static_expiry = (expiry, None if expiry is None else expiry.timestamp())
        expires_at, expires_ts = self._static_expiry
        if expires_at is None or expires_ts is None:
            return
        # Plain POSIX times on the hot path: this runs before every call.
        remaining = expires_ts - time.time()
        if remaining > _EXPIRY_WARNING_SECONDS or (remaining > 0 and self._warned_expiry_for == token):
            return
        now = pendulum.now("UTC")
        if expires_at <= now:
            raise JobMojitoAuthError(
                f"The access token in connection {self.conn_id!r} expired at "
                f"{expires_at.to_iso8601_string()} ({expires_at.diff_for_humans()}). Put a fresh "
                "token in the connection's password, or set login (e-mail) and password so the hook "
                "signs in by itself.",
                status_code=None,
            )
        if expires_at - now < EXPIRY_WARNING_WINDOW and self._warned_expiry_for != token:
            self._warned_expiry_for = token
            self.log.warning(
                "The access token in connection %r expires at %s (%s).",
                self.conn_id,
                expires_at.to_iso8601_string(),
                expires_at.diff_for_humans(),
            )

    def _raise_for_sign_in(self, answer: Answer) -> NoReturn:
        """Refused credentials are permanent; a sign-in service that is down or misplaced is not
        a credentials problem, and saying so would send the user to change a good password."""
        settings = self.settings
        status = answer.status
        error, _ = error_of(answer, self.secrets())
        reason = f"({status}): {error or 'no reason given'}."
        kwargs: dict[str, Any] = {"status_code": status, "error": error}
        if status >= 500:
            raise JobMojitoServerError(
                f"Supabase sign-in at {settings.supabase_url} failed {reason}", **kwargs
            )
        if status not in _SIGN_IN_REFUSALS:
            raise JobMojitoConfigError(
                f"Supabase sign-in at {settings.supabase_url} answered {status}: check the connection's "
                "supabase_url (the project URL, without /auth/v1).",
                **kwargs,
            )
        raise JobMojitoAuthError(
            f"Sign-in to {settings.supabase_url} as {settings.login} was refused {reason}", **kwargs
        )
