"""The sandbox's pytest plugin costs nothing where it is not used.

pytest imports every ``pytest11`` entry point in every session, so the plugin module (and the
packages above it) must import nothing beyond pytest; the sandbox's server is imported inside the
fixtures, when a test asks for one. Each check runs in a fresh interpreter: this session has long
imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import airflow_provider_jobmojito

#: Where the package under test lives: subprocesses must import this copy, not another install.
SOURCE_ROOT = Path(airflow_provider_jobmojito.__file__).resolve().parents[1]
PLUGIN = "airflow_provider_jobmojito.sandbox.pytest_plugin"


def _run(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
    }
    env["PYTHONPATH"] = str(SOURCE_ROOT)
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_importing_the_plugin_imports_nothing_but_pytest_and_its_own_packages(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        import pytest
        before = set(sys.modules)
        import {PLUGIN}
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    result = _run("-c", script, cwd=tmp_path)  # not a checkout, which `-c` would put first on sys.path
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout)
    # Not the sandbox's server, nor Airflow, the hooks, requests or pendulum: only the packages the
    # plugin module sits in, which import nothing at import themselves.
    assert loaded == ["airflow_provider_jobmojito", "airflow_provider_jobmojito.sandbox", PLUGIN]


def test_a_session_loads_the_sandbox_only_when_a_test_asks_for_its_fixtures(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plugin_use.py").write_text(
        textwrap.dedent(
            """
            import sys

            SERVER = "airflow_provider_jobmojito.sandbox.server"


            def test_a_test_without_the_fixtures_finds_no_sandbox_loaded():
                assert SERVER not in sys.modules
                assert "airflow_provider_jobmojito.hooks.jobmojito" not in sys.modules


            def test_the_sandbox_fixture_serves(jobmojito_sandbox, jobmojito_sandbox_token):
                assert SERVER in sys.modules
                assert jobmojito_sandbox.url.startswith("http://127.0.0.1:")
                assert jobmojito_sandbox.positions() == {}
                assert jobmojito_sandbox_token.count(".") == 2


            def test_the_factory_starts_sandboxes_with_settings(jobmojito_sandbox_factory):
                first = jobmojito_sandbox_factory(token_lifetime=5)
                second = jobmojito_sandbox_factory()
                assert first.port != second.port
            """
        )
    )
    result = _run("-m", "pytest", "-p", "no:cacheprovider", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
