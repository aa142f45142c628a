"""For the tests of rotated credentials: count the connection reads where Airflow answers them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest


@dataclass
class ConnectionReads:
    """The connection ids Airflow was asked for, by the sync and the async lookups."""

    sync: list[str] = field(default_factory=list)
    asynchronous: list[str] = field(default_factory=list)


def count_connection_reads(monkeypatch: pytest.MonkeyPatch) -> ConnectionReads:
    """Wrap Airflow's lookups the hook uses (``BaseHook.get_connection`` as the hook inherits it,
    and common-compat's ``get_async_connection``) to count their calls."""
    import airflow.providers.common.compat.connection as compat

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    reads = ConnectionReads()
    lookup = compat.get_async_connection

    async def get_async_connection(conn_id: str, hook: Any = None) -> Any:
        reads.asynchronous.append(conn_id)
        return await lookup(conn_id, hook)

    get_connection = JobMojitoHook.get_connection  # bound to the class

    def counted(cls: type[JobMojitoHook], conn_id: str) -> Any:
        reads.sync.append(conn_id)
        return get_connection(conn_id)

    monkeypatch.setattr(compat, "get_async_connection", get_async_connection)
    monkeypatch.setattr(JobMojitoHook, "get_connection", classmethod(counted))
    return reads
