"""Registering secrets with Airflow's secret masker: one at a time, or many at the price of one.

Airflow's masker (``SecretsMasker.add_mask``, on every line from 2.11 to 3.3) keeps one set of
escaped patterns and recompiles a single regular expression over all of them each time a new
secret is added, including each item of a list. Registering N signing keys one by one therefore
costs N compiles of a pattern that grows with N: quadratic, about two minutes for 1,000 keys.

* :func:`mask` registers one secret at once (a password, a token, one signing key), through
  ``mask_secret`` as before.
* :func:`mask_all` registers many with one compile in this process and, on Airflow 3, one
  ``MaskSecret`` message to the supervisor (the public ``mask_secret`` called with a list).
* :class:`SecretBatch` collects secrets from many threads (a bulk call's workers) and registers
  them all with :func:`mask_all` when its ``with`` block ends, however it ends.

How :func:`mask_all` gets one compile: for each secret it asks a scratch copy of the masker which
patterns ``add_mask`` would add (so Airflow's own escaping, minimum length, skip list and secret
mask adapter decide, on every line), puts all of them but one secret's into the masker's
``patterns`` set, then calls the masker's own ``add_mask`` for that last secret, which compiles
once over the whole set. ``patterns``, ``replacer`` and ``add_mask`` are the masker's attributes,
not a documented API; each is checked before use, and the result is checked after (the
pattern set holds every new pattern and the compiled expression was replaced). When a check fails
(a masker shaped differently, or no masker configured), every secret is registered one by one
through ``mask_secret``, as Airflow intends: slower, never less safe.

On Airflow 3 the supervisor, which redacts the task's log lines, registers the secrets of the one
``MaskSecret`` message with its own ``add_mask``, which takes a list (or a dict) one item at a time:
one compile per new secret there. Nothing this process sends changes that, unless the deployment
opts in: with :func:`split_batch` as Airflow's ``[logging] secret_mask_adapter``, :func:`mask_all`
sends the batch as one string, :data:`BATCH_SEPARATOR` between the secrets, and ``add_mask`` of that
one string adds every secret (the adapter's adaptations) with one compile, in the supervisor too.
The task process and its supervisor read the same configuration; the string is sent only when
this process's masker has the adapter.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import mask_secret

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

#: Serialises this module's registrations: Airflow's masker updates its pattern set and its
#: compiled expression without a lock, so two threads registering at once could leave one secret
#: out of the expression. One lock in a list, so that a forked child can replace it.
_LOCK = [threading.Lock()]


#: What Airflow 3's log pipeline takes for the start of a JWT (``{"`` in base64): it rewrites
#: ``eyJ`` and all that follows to :data:`JWT_REWRITTEN` *before* the secret masker sees the line,
#: so the masker no longer finds a secret that merely contains ``eyJ`` (a random signing key does,
#: about once in 6,000), and the part before it was shown. What the line then holds is registered
#: too (:func:`with_jwt_lookalike_rewrites`).
JWT_START = "eyJ"
#: What Airflow 3's log pipeline writes in place of :data:`JWT_START` and all that follows it.
JWT_REWRITTEN = "eyJ***"


#: What :func:`mask_all` puts between a batch's secrets when :func:`split_batch` is the deployment's
#: ``secret_mask_adapter``: the ASCII unit separator, which no token, key or password here holds.
BATCH_SEPARATOR = "\x1f"


def split_batch(secret: str) -> list[str]:
    """Airflow's ``[logging] secret_mask_adapter`` for batches of secrets sent as one string.

    Set ``AIRFLOW__LOGGING__SECRET_MASK_ADAPTER=airflow_provider_jobmojito.masking.split_batch``
    where tasks run: a bulk call's signing keys then cost the task's supervisor one compile of its
    masker's expression instead of one per key. Any other secret has no adaptation.

    :param secret: a secret given to Airflow's masker.
    :return: the secrets ``secret`` joins with :data:`BATCH_SEPARATOR`; none when it joins none.
    """
    if BATCH_SEPARATOR not in secret:
        return []
    return [part for part in secret.split(BATCH_SEPARATOR) if part]


def with_jwt_lookalike_rewrites(secrets: Iterable[str]) -> list[str]:
    """``secrets``, and for each that holds :data:`JWT_START` past its start, the text Airflow's
    log pipeline makes of it: the part before, then :data:`JWT_REWRITTEN`.

    Not the part before alone: the masker tries its patterns in no set order, so a prefix of a
    secret could be replaced first and leave the rest of the secret shown wherever the secret
    itself is masked (a rendered field, an exception); the rewritten text never occurs there.
    """
    expanded: list[str] = []
    for secret in secrets:
        expanded.append(secret)
        start = secret.find(JWT_START)
        if start > 0:  # a JWT itself (from the start) is rewritten whole
            expanded.append(secret[:start] + JWT_REWRITTEN)
    return expanded


def mask(secret: str) -> None:
    """Register one secret with Airflow's secret masker now (and, on Airflow 3, the supervisor's)."""
    if not secret:
        return
    with _LOCK[0]:
        for each in with_jwt_lookalike_rewrites([secret]):
            mask_secret(each)


def mask_all(secrets: Iterable[str]) -> None:
    """Register many secrets with one compile of the masker's expression; see the module's notes.

    Returns once every secret is masked here and, on Airflow 3, in the supervisor.
    """
    given = [secret for secret in secrets if isinstance(secret, str) and secret]
    batch = list(dict.fromkeys(with_jwt_lookalike_rewrites(given)))
    if not batch:
        return
    with _LOCK[0]:
        masker = _local_masker()
        if masker is None or not _merge(masker, batch):
            for secret in batch:  # the per-secret path: Airflow's own, one compile each
                mask_secret(secret)
            return
        if (
            len(batch) > 1
            and getattr(masker, "secret_mask_adapter", None) is split_batch
            and not any(BATCH_SEPARATOR in secret for secret in batch)  # or it would be split
        ):
            # One string, which the supervisor's masker (the same configuration) splits with one
            # compile; here it adds only the joined string itself.
            mask_secret(BATCH_SEPARATOR.join(batch))
            return
        # Every pattern is in the local masker now, so this adds none and compiles nothing here;
        # on Airflow 3 it sends the whole batch to the supervisor in one message.
        mask_secret(cast("list[Any]", batch))


class SecretBatch:
    """Collect secrets from any number of threads; register them together when the block ends.

    For a bulk call whose results are handed back together: nothing logs a secret inside the
    block, and every secret is registered before the block is left, by a return or an exception::

        with SecretBatch() as batch:
            results = run_all(on_secret=batch.add)
        return results
    """

    def __init__(self) -> None:
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Keep ``secret`` to be registered when the batch ends (thread-safe, no compile)."""
        with self._lock:
            self._secrets.append(secret)

    @property
    def pending(self) -> int:
        """How many secrets wait to be registered."""
        with self._lock:
            return len(self._secrets)

    def flush(self) -> None:
        """Register what was collected so far with :func:`mask_all`."""
        with self._lock:
            secrets, self._secrets = self._secrets, []
        mask_all(secrets)

    def __enter__(self) -> SecretBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()


def _local_masker() -> Any | None:
    """The masker ``mask_secret`` registers with, when it has the shape :func:`_merge` needs."""
    module = sys.modules.get(getattr(mask_secret, "__module__", ""))
    getter = getattr(module, "_secrets_masker", None)
    if not callable(getter) and getattr(module, "__name__", "") == "airflow.sdk.log":
        # Airflow 3.1's airflow.sdk.log imports the getter inside mask_secret, from here.
        shared = sys.modules.get("airflow.sdk._shared.secrets_masker")
        getter = getattr(shared, "_secrets_masker", None)
    if not callable(getter):
        return None
    try:
        masker = getter()
    except Exception:  # Airflow 2 raises when logging was configured without a masker
        return None
    if not (
        isinstance(getattr(masker, "patterns", None), set)
        and hasattr(masker, "replacer")
        and callable(getattr(masker, "add_mask", None))
    ):
        return None
    return masker


def _merge(masker: Any, batch: list[str]) -> bool:
    """Add the patterns of every secret in ``batch`` to ``masker`` with one compile.

    :return: whether it worked; ``False`` leaves the masker with more patterns than its compiled
        expression covers, which the caller's per-secret registration then compiles.
    """
    try:
        scratch = copy.copy(masker)
        fresh: dict[str, set[str]] = {}
        for secret in batch:
            scratch.patterns = set()
            scratch.replacer = None
            scratch.add_mask(secret)
            new = scratch.patterns - masker.patterns
            if new:
                fresh[secret] = new
    except Exception:
        return False
    if not fresh:
        return True  # every secret was registered already, or is one the masker never masks
    *others, last = fresh
    triggering = fresh[last]
    added = set().union(*(fresh[secret] for secret in others)) - triggering
    before = masker.replacer
    try:
        masker.patterns.update(added)
        masker.patterns.difference_update(triggering)  # so that add_mask finds them new and compiles
        masker.add_mask(last)
    except Exception:
        return False
    wanted = added | triggering
    return masker.replacer is not before and wanted <= masker.patterns


def _after_fork_in_child() -> None:
    # A parent thread may have held the lock at the fork; in the child it would stay held.
    _LOCK[0] = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
