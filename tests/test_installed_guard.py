"""scripts/test_installed.py's guard: with JOBMOJITO_TEST_INSTALLED=1 the suite refuses to start
unless the provider it imports is the one installed in site-packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import airflow_provider_jobmojito
from tests.conftest import REPO


def test_a_package_shadowing_the_installed_one_is_refused(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shutil.copytree(
        Path(airflow_provider_jobmojito.__file__).parent,
        shadow / "airflow_provider_jobmojito",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {**os.environ, "JOBMOJITO_TEST_INSTALLED": "1", "PYTHONPATH": str(shadow)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "tests/test_settings.py"]
    result = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]  # pytest's usage error
    assert "JOBMOJITO_TEST_INSTALLED=1, but airflow_provider_jobmojito was imported from" in result.stderr
    assert "outside this interpreter's site-packages" in result.stderr
