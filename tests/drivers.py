"""Both drivers over real HTTP, built from their parts as the hook builds them, for the tests.

Waits are recorded instead of slept, and jitter is its upper bound, so a backoff schedule is
asserted exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import requests

from airflow_provider_jobmojito.auth import TokenProvider
from airflow_provider_jobmojito.client import JobMojitoClient
from airflow_provider_jobmojito.client_async import AsyncJobMojitoClient
from airflow_provider_jobmojito.endpoints import Endpoints
from airflow_provider_jobmojito.retry import RetryPolicy
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.transport import RequestsTransport
from airflow_provider_jobmojito.transport_async import HttpxTransport

HEADERS = {"User-Agent": "tests", "Accept": "application/json"}


class Log:
    """A logger that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _add(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    info = warning = error = _add


def endpoints_for(api_url: str, *, password: str, login: str = "", **overrides: Any) -> Endpoints:
    """The endpoints of a connection to ``api_url``, with a backoff without randomness."""
    settings = HookSettings.resolve(
        host=api_url, login=login, password=password, extras={}, overrides=overrides
    )
    policy = dataclasses.replace(settings.retry, jitter=lambda low, high: high)
    assert isinstance(policy, RetryPolicy)
    settings = dataclasses.replace(settings, retry=policy)
    log = Log()
    return Endpoints(settings, TokenProvider(settings, "test", log=log), log)


def log_of(endpoints: Endpoints) -> Log:
    log = endpoints.calls.log
    assert isinstance(log, Log)
    return log


def sync_client() -> tuple[JobMojitoClient, list[float]]:
    """The sync driver; its waits are recorded (in the list returned), not slept."""
    client = JobMojitoClient(RequestsTransport(requests.Session()))
    waits: list[float] = []

    def wait(seconds: float, stop: Any) -> bool:
        waits.append(seconds)
        return False

    client.wait = wait
    return client, waits


def async_client() -> tuple[AsyncJobMojitoClient, list[float]]:
    """The async driver (build it inside the event loop); its waits are recorded, not slept."""
    client = AsyncJobMojitoClient(HttpxTransport(HEADERS))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client.sleep = sleep
    return client, waits


def run_async(plan: Any, **kwargs: Any) -> Any:
    """Carry ``plan`` out with a new async driver in a new event loop."""

    async def scenario() -> Any:
        client, _ = async_client()
        try:
            return await client.run(plan, **kwargs)
        finally:
            await client.aclose()

    return asyncio.run(scenario())
