"""Run the test suite against the installed airflow-provider-jobmojito, not this source tree.

Usage: VENV/bin/python scripts/test_installed.py [pytest arguments...]

The interpreter running this script is the one tested: its site-packages must hold the provider,
installed from the wheel (not ``pip install -e``). A checkout on sys.path would shadow that install:
pytest puts the directory above the ``tests`` package (the repository root, which holds
``airflow_provider_jobmojito/``) at the front of sys.path, and so does ``python -m`` in the suite's
subprocesses that run from the repository. So the suite runs from a copy of what it needs (tests/,
example_dags/, docs/ whose sources tests/docs reads, and pyproject.toml for pytest's settings) in a
temporary directory that holds no copy of the package, with the cache provider off (it would write
into the copy), and with JOBMOJITO_TEST_INSTALLED=1, which makes tests/conftest.py refuse to start
unless the package was imported from site-packages. The end-to-end tests (tests/e2e) are left out:
`make test-e2e` runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ("tests", "example_dags", "docs")


def main(pytest_args: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="jobmojito-installed-tests-") as work:
        root = Path(work)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "e2e", "_build")
        for name in COPIED:
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        # pyproject.toml for pytest's settings; README.md, whose links and example
        # tests/docs/test_sources.py checks.
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, root / name)
        env = {
            **os.environ,
            "JOBMOJITO_TEST_INSTALLED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.pop("PYTHONPATH", None)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
        return subprocess.run(command, cwd=root, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
