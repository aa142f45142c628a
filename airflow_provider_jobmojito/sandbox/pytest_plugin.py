"""pytest fixtures for the JobMojito sandbox (registered as the ``jobmojito_sandbox`` plugin).

Every fixture starts its own server on a free loopback port, so tests never share state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .server import SandboxServer

SandboxFactory = Callable[..., SandboxServer]


@pytest.fixture
def jobmojito_sandbox() -> Iterator[SandboxServer]:
    """A fresh, empty, running :class:`SandboxServer` on ``127.0.0.1``, stopped after the test.

    Starting one costs about a millisecond, so isolation comes from a new server per test rather
    than from resetting a shared one.
    """
    with SandboxServer() as server:
        yield server


@pytest.fixture
def jobmojito_sandbox_factory() -> Iterator[SandboxFactory]:
    """Start sandboxes with custom settings: ``factory(anon_key="k", token_lifetime=5, ...)``.

    Takes :class:`SandboxServer`'s keyword arguments; every server started is stopped after the test.
    """
    servers: list[SandboxServer] = []

    def start(**kwargs: Any) -> SandboxServer:
        server = SandboxServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def jobmojito_sandbox_token(jobmojito_sandbox: SandboxServer) -> str:
    """An access token valid for an hour on the ``jobmojito_sandbox`` server."""
    return jobmojito_sandbox.issue_token()
