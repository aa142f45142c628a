"""Registering secrets with Airflow's secret masker, the moment the provider holds them."""

from __future__ import annotations

import os
import threading

from airflow.providers.common.compat.sdk import mask_secret

#: One lock in a list, so that a forked child can replace it without a ``global`` statement.
_LOCK = [threading.Lock()]


def mask(secret: str) -> None:
    """Register ``secret`` with Airflow's secret masker.

    Serialised: the masker rebuilds one pattern from its set of secrets without a lock, so two
    threads of a bulk call registering keys at once could leave one key out of the pattern.
    """
    with _LOCK[0]:
        mask_secret(secret)


def _after_fork_in_child() -> None:
    # A parent thread may have held the lock at the fork; in the child it would stay held.
    _LOCK[0] = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
