"""Signed-in tokens shared by every process of one host (and one user): one sign-in for all tasks.

Each Airflow task runs in a process of its own, so a cache per process signs in once per task;
Supabase limits sign-ins per IP (a bucket of about 30), which a mapped DAG of a few hundred
positions on one worker would exhaust. :class:`HostTokenCache` keeps one file per account:

* in a folder only its owner can use (``0700``), files only its owner can read (``0600``); a
  folder or file that is anyone else's, or readable by others, or a symlink, is never used;
* written atomically (a temporary file, then a rename), and read with every check again: a
  corrupt, foreign or expired file is ignored, never trusted;
* with a lock file per account (``lockf``), held across a sign-in, so that processes starting
  together sign in once, and the first to be refused (401) signs in again once for all;
* holding the access token and its expiry only: never the password, which is not even part of
  the file name (the account is named by a digest of URL, e-mail and password digest);
* an optimisation only: a folder that cannot be written (a read-only mount, a full disk) or a lock
  or token path that is not a regular file (a FIFO, a symlink, a folder) leaves the process with
  its own cache, and a warning logged once per process and folder (:func:`warn_once`). Files are
  opened with ``O_NONBLOCK`` and ``O_NOFOLLOW`` and checked with ``S_ISREG`` after opening, so a
  FIFO planted in their place cannot make ``open()`` wait forever.

A failed sign-in is remembered briefly (:class:`FailedSignIn`), in a ``.failed`` file next to the
token's, written under the account's lock by the process whose sign-in failed: processes that
waited for the lock meanwhile raise the same typed error at once instead of each replaying the
whole retry schedule (N waiting tasks would otherwise wait N times as long). The record holds the
error's class (one of :data:`REMEMBERED_FAILURES`), status, and message with the password, the
anon key, the e-mail and the URL taken out, until when it holds (:data:`FAILED_SIGN_IN_MEMORY`:
30 s for a sign-in service that failed, 60 s for refused credentials or a misplaced service) and a
fingerprint of the credentials (URL, e-mail, password and anon key): a changed password or anon
key does not match it and signs in at once. A successful sign-in deletes it.

Configured in Airflow's configuration (or ``AIRFLOW__JOBMOJITO__...`` variables):
``[jobmojito] token_cache`` is ``host`` (the default) or ``process`` (one sign-in per process, no
files), and ``[jobmojito] token_cache_dir`` the folder (default:
``$XDG_CACHE_HOME/airflow-provider-jobmojito``, else ``~/.cache/airflow-provider-jobmojito``).
:data:`CONFIG_SECTION` declares both to Airflow (the provider info's ``config``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

#: The ``[jobmojito]`` section of Airflow's configuration, as the provider info declares it (so that
#: ``airflow config list`` shows it); :func:`configured` takes its defaults from here.
CONFIG_SECTION: dict[str, Any] = {
    "description": "The JobMojito provider (airflow-provider-jobmojito).",
    "options": {
        "token_cache": {
            # Lines of airflow.cfg's comment: Airflow writes each line of a description as one.
            "description": (
                "Where sign-in mode (a jobmojito connection with a login) keeps the access tokens\n"
                "it gets. host: in files of a private folder (token_cache_dir), shared by the task\n"
                "processes of this host and user, which then sign in once between them (Supabase\n"
                "limits sign-ins per IP address). process: in each process's memory, one sign-in\n"
                "per process and no files.\n"
            ),
            "version_added": "1.0.0",
            "type": "string",
            "example": "process",
            "default": "host",
        },
        "token_cache_dir": {
            "description": (
                "The folder of the host-wide token cache (token_cache = host), made with mode 0700.\n"
                "A folder that others may use, or that cannot be written, is not used: each process\n"
                "then signs in for itself. Empty: $XDG_CACHE_HOME/airflow-provider-jobmojito, else\n"
                "~/.cache/airflow-provider-jobmojito.\n"
            ),
            "version_added": "1.0.0",
            "type": "string",
            "example": "/var/cache/airflow-provider-jobmojito",
            "default": "",
        },
    },
}

_FORMAT = 1
_MAX_FILE_BYTES = 64 * 1024
_PRIVATE = 0o077
#: Never wait in ``open()``: a FIFO in place of a file would block it until a writer comes.
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

#: How long a failed sign-in is remembered, by the error's class: a failing service may be back
#: soon (and Airflow retries the task later anyway); refused credentials stay refused until someone
#: changes them, which changes the fingerprint and ends the memory at once.
FAILED_SIGN_IN_MEMORY: dict[str, float] = {
    "JobMojitoServerError": 30.0,
    "JobMojitoUnavailableError": 30.0,
    "JobMojitoAuthError": 60.0,
    "JobMojitoConfigError": 60.0,
}
#: The errors of a sign-in that are remembered: the answers of the sign-in service itself.
REMEMBERED_FAILURES = frozenset(FAILED_SIGN_IN_MEMORY)


class _FoldersWarnedAbout:
    """The cache folders this process has warned about: one warning per folder, not per call."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._folders: set[str] = set()

    def first_time(self, directory: Path) -> bool:
        with self._mutex:
            first = str(directory) not in self._folders
            self._folders.add(str(directory))
            return first

    def _after_fork_in_child(self) -> None:
        # "Once per process": a forked task process warns for itself, in its own log.
        self._mutex = threading.Lock()
        self._folders = set()


_WARNED = _FoldersWarnedAbout()
os.register_at_fork(after_in_child=_WARNED._after_fork_in_child)


def warn_once(log: Any, directory: Path, message: str, *args: Any) -> None:
    """Log ``message`` as a warning the first time this process has trouble with ``directory``.

    A broken cache folder would otherwise log a line per API call: one line says it all, and the
    calls go on with the process's own cache.
    """
    if _WARNED.first_time(directory):
        log.warning(message, *args)


@dataclass(frozen=True)
class FailedSignIn:
    """A sign-in that failed, as remembered on the host: what to raise, and until when.

    :param kind: the error's class name, one of :data:`REMEMBERED_FAILURES`.
    :param message: the error's message, with secrets (and the e-mail and URL) taken out.
    :param until: the POSIX time the memory ends.
    """

    kind: str
    status_code: int | None
    error: str | None
    message: str
    until: float


@dataclass(frozen=True)
class SignedInToken:
    """An access token got by signing in, and when it stops being worth reusing (what is on file)."""

    access_token: str = field(repr=False)
    expires_at: pendulum.DateTime

    def is_fresh(self) -> bool:
        return pendulum.now("UTC") < self.expires_at


def configured() -> HostTokenCache | None:
    """The host-wide cache as Airflow's configuration sets it, or ``None`` when it is off or its
    folder cannot be made private."""
    from airflow.providers.common.compat.sdk import conf

    mode = str(conf.get("jobmojito", "token_cache", fallback=_default("token_cache"))).strip().lower()
    if mode == "process":
        return None
    if mode != "host":
        log.warning("[jobmojito] token_cache must be 'host' or 'process', not %r: using 'process'.", mode)
        return None
    folder = str(conf.get("jobmojito", "token_cache_dir", fallback=_default("token_cache_dir"))).strip()
    directory = Path(folder).expanduser() if folder else _default_directory()
    try:
        return HostTokenCache(directory)
    except OSError as error:  # a read-only mount, a full disk, a folder others may use
        warn_once(log, directory, "Not sharing signed-in tokens between processes: %s", error)
        return None


def _default(option: str) -> str:
    """The declared default of ``[jobmojito] option``: what applies where Airflow has not loaded
    the providers' configuration (a task process may not have)."""
    return str(CONFIG_SECTION["options"][option]["default"])


def _default_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "airflow-provider-jobmojito"


class HostTokenCache:
    """Signed-in tokens in files of a private folder; see the module's notes.

    :param directory: the folder, created ``0700`` if missing.
    :param clock: the POSIX time now (a test's clock, for the expiry of a remembered failure).
    :raises OSError: when the folder is not a private folder of this user's.
    """

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & _PRIVATE:
            raise OSError(f"{directory} must be a folder of this user's that no one else may use (mode 0700)")
        self.directory = directory

    def get(self, key: tuple[str, ...]) -> SignedInToken | None:
        """The account's token when a trustworthy, fresh one is on file; else ``None``."""
        data = self._read(self._path(key))
        if data is None or data.get("account") != _account(key) or data.get("format") != _FORMAT:
            return None
        token, expires = data.get("access_token"), data.get("expires_at")
        if not isinstance(token, str) or not token or not isinstance(expires, int | float):
            return None
        try:
            cached = SignedInToken(access_token=token, expires_at=pendulum.from_timestamp(expires, tz="UTC"))
        except (OverflowError, OSError, ValueError):
            return None
        return cached if cached.is_fresh() else None

    def put(self, key: tuple[str, ...], token: SignedInToken) -> None:
        """Write the account's token (atomically; readable by this user alone).

        :raises OSError: when the folder cannot be written.
        """
        payload = {
            "format": _FORMAT,
            "account": _account(key),
            "access_token": token.access_token,
            "expires_at": token.expires_at.timestamp(),
        }
        self._write(self._path(key), payload)

    def remember_failure(self, key: tuple[str, ...], fingerprint: str, failure: FailedSignIn) -> None:
        """Remember the account's failed sign-in for the others (call it holding the lock).

        :param fingerprint: a digest of every credential the sign-in sent.
        :raises OSError: when the folder cannot be written.
        """
        payload = {
            "format": _FORMAT,
            "account": _account(key),
            "credentials": fingerprint,
            "kind": failure.kind,
            "status_code": failure.status_code,
            "error": failure.error,
            "message": failure.message,
            "until": failure.until,
        }
        self._write(self._failure_path(key), payload)

    def failure(self, key: tuple[str, ...], fingerprint: str) -> FailedSignIn | None:
        """The account's remembered failed sign-in, if one is on file for these very credentials
        and has not expired; else ``None``."""
        data = self._read(self._failure_path(key))
        if (
            data is None
            or data.get("format") != _FORMAT
            or data.get("account") != _account(key)
            or data.get("credentials") != fingerprint
            or data.get("kind") not in REMEMBERED_FAILURES
        ):
            return None
        until, message = data.get("until"), data.get("message")
        status, error = data.get("status_code"), data.get("error")
        if (
            not isinstance(until, int | float)
            or isinstance(until, bool)
            or not isinstance(message, str)
            or not (status is None or (isinstance(status, int) and not isinstance(status, bool)))
            or not (error is None or isinstance(error, str))
        ):
            return None
        # A record from the future (a clock set back, a forged file) holds no longer than the
        # longest memory from now.
        now = self.clock()
        if not now < until <= now + max(FAILED_SIGN_IN_MEMORY.values()):
            return None
        return FailedSignIn(kind=data["kind"], status_code=status, error=error, message=message, until=until)

    def forget_failure(self, key: tuple[str, ...]) -> None:
        """Forget the account's failed sign-in (it has just signed in)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._failure_path(key))

    def _write(self, path: Path, payload: dict[str, Any]) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump(payload, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def discard(self, key: tuple[str, ...], access_token: str) -> None:
        """Forget ``access_token`` (refused by the API) unless another process already replaced it."""
        with self.lock(key):
            cached = self.get(key)
            if cached is not None and cached.access_token == access_token:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(key))

    def forget(self, key: tuple[str, ...]) -> None:
        """Forget the account's token, whatever it is (its credentials were replaced). Without the
        lock: a sign-in racing with it may write its token again, which is as good."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def lock(self, key: tuple[str, ...]) -> contextlib.AbstractContextManager[None]:
        """Hold the account's lock (across processes) for the duration of the block."""
        return _FILE_LOCKS.hold(self._path(key).with_suffix(".lock"))

    def _path(self, key: tuple[str, ...]) -> Path:
        return self.directory / f"{_account(key)[:40]}.json"

    def _failure_path(self, key: tuple[str, ...]) -> Path:
        return self.directory / f"{_account(key)[:40]}.failed"

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The file's JSON object, if the file is a regular file of this user's that no one else
        can read or write; ``None`` for anything else, including a missing or corrupt file."""
        try:
            descriptor = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except OSError:  # missing, a symlink, unreadable
            return None
        with os.fdopen(descriptor, "rb") as file:
            info = os.fstat(file.fileno())
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_uid != os.getuid()
                or info.st_mode & _PRIVATE
                or info.st_size > _MAX_FILE_BYTES
            ):
                warn_once(
                    log,
                    self.directory,
                    "Ignoring the token cache file %s: it is not a private regular file of this user's.",
                    path,
                )
                return None
            try:
                data = json.loads(file.read(_MAX_FILE_BYTES))
            except (ValueError, RecursionError):
                return None
        return data if isinstance(data, dict) else None


@dataclass
class _Held:
    """A lock file this process holds (or is taking): its one descriptor, and who uses it."""

    descriptor: int
    users: int = 0
    taken: threading.Event = field(default_factory=threading.Event)
    failure: OSError | None = None


class ProcessFileLocks:
    """The lock files of this process: one descriptor per file, shared by its threads.

    A POSIX record lock (``lockf``) belongs to the process, and closing *any* descriptor of the
    file releases it. So a second user in this process (``discard()`` after a 401, while another
    thread or coroutine signs in) must not open and close a descriptor of its own: it shares the
    first one's, once the process has the lock, and the last user to leave closes it. Processes
    still wait for each other; this process's threads serialise sign-ins with their own lock.
    Not ``flock()``: a process forked while another thread holds it would inherit the lock.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[Path, _Held] = {}

    @contextlib.contextmanager
    def hold(self, path: Path) -> Iterator[None]:
        """Hold the lock of ``path`` (created ``0600`` if missing) for the block."""
        with self._mutex:
            held = self._held.get(path)
            first = held is None
            if held is None:
                held = self._held[path] = _Held(_open_lock_file(path))
            held.users += 1
        try:
            if first:
                try:
                    fcntl.lockf(held.descriptor, fcntl.LOCK_EX)
                except OSError as error:
                    held.failure = error
                    raise
                finally:
                    held.taken.set()
            else:
                held.taken.wait()
                if held.failure is not None:
                    raise OSError(f"Could not lock {path}: {held.failure}")
            yield
        finally:
            with self._mutex:
                held.users -= 1
                if not held.users:
                    del self._held[path]
                    os.close(held.descriptor)  # releases the lock

    def _after_fork_in_child(self) -> None:
        # The child holds none of its parent's locks; its inherited descriptors only take room.
        for held in self._held.values():
            with contextlib.suppress(OSError):
                os.close(held.descriptor)
        self._mutex = threading.Lock()
        self._held = {}


def _open_lock_file(path: Path) -> int:
    """A descriptor of the lock file ``path`` (created ``0600`` if missing).

    :raises OSError: when it cannot be opened or created, or is not a regular file (a FIFO, which
        ``O_NONBLOCK`` opened without waiting for a reader; a device): a lock there would lock
        nothing for the other processes, or never be granted.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is not a regular file")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


_FILE_LOCKS = ProcessFileLocks()
os.register_at_fork(after_in_child=_FILE_LOCKS._after_fork_in_child)


def _account(key: tuple[str, ...]) -> str:
    """The account's name in the cache: a digest, so the folder shows neither URL nor e-mail."""
    return hashlib.sha256("\0".join(key).encode()).hexdigest()
