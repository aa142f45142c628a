"""pytest fixtures for the JobMojito sandbox (registered as the ``jobmojito_sandbox`` plugin).

Every fixture starts its own server on a free loopback port, so tests never share state.

pytest loads this module in every session of an environment where the provider is installed, used
or not: so it imports nothing but pytest at import, and the sandbox's server only inside the
fixtures, when a test asks for one (tests/sandbox/test_pytest_plugin.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .server import SandboxServer

#: What ``jobmojito_sandbox_factory`` gives: a forward reference, so that nothing imports the server.
SandboxFactory = Callable[..., "SandboxServer"]


@pytest.fixture
def jobmojito_sandbox() -> Iterator[SandboxServer]:
    """A fresh, empty, running :class:`SandboxServer` on ``127.0.0.1``, stopped after the test.

    Starting one costs about a millisecond, so isolation comes from a new server per test rather
    than from resetting a shared one.
    """
    from .server import SandboxServer

    with SandboxServer() as server:
        yield server


@pytest.fixture
def jobmojito_sandbox_factory() -> Iterator[SandboxFactory]:
    """Start sandboxes with custom settings: ``factory(anon_key="k", token_lifetime=5, ...)``.

    Takes :class:`SandboxServer`'s keyword arguments; every server started is stopped after the test.
    """
    from .server import SandboxServer

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
