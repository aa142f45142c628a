"""``[core] hostname_callable`` of the e2e Celery workers: both run on this one machine, so each is
given the host name of its own (``JOBMOJITO_E2E_WORKER_HOSTNAME``), as two machines would have.
Task instances record it as their ``hostname``."""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["JOBMOJITO_E2E_WORKER_HOSTNAME"]
