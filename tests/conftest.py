"""Test set-up: a private AIRFLOW_HOME, and connections that point at the JobMojito sandbox.

The sandbox fixture itself (``jobmojito_sandbox``) comes from the provider's pytest plugin,
``airflow_provider_jobmojito.sandbox.pytest_plugin``, registered as a ``pytest11`` entry point.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# JobMojito's OpenAPI file, trimmed (tests/contract/README.md says from where).
CONTRACT = Path(__file__).resolve().parent / "contract" / "jobmojito-openapi.json"

# Read from the distribution's metadata: importing airflow here would read its configuration
# before pytest_configure has set AIRFLOW_HOME.
AIRFLOW_VERSION = Version(version("apache-airflow"))
AIRFLOW_V3 = AIRFLOW_VERSION.major >= 3


def _check_the_installed_package_is_tested() -> None:
    """With JOBMOJITO_TEST_INSTALLED=1 (scripts/test_installed.py), refuse to test anything but the
    installed distribution: a source tree or an editable install on sys.path would shadow it."""
    if os.environ.get("JOBMOJITO_TEST_INSTALLED") != "1":
        return
    import airflow_provider_jobmojito

    module = Path(airflow_provider_jobmojito.__file__).resolve()
    site_dirs = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    if not any(module.is_relative_to(site) for site in site_dirs):
        raise pytest.UsageError(
            f"JOBMOJITO_TEST_INSTALLED=1, but airflow_provider_jobmojito was imported from {module}, "
            f"outside this interpreter's site-packages ({', '.join(map(str, sorted(site_dirs)))})"
        )


def pytest_configure(config: pytest.Config) -> None:
    _check_the_installed_package_is_tested()
    # Before anything imports airflow: it reads its configuration once, at import.
    home = Path(os.environ.get("TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="jobmojito-airflow-home-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ.pop("AIRFLOW_CONN_JOBMOJITO_DEFAULT", None)
    if not AIRFLOW_V3:
        # Airflow 2 checks the executor against the database when a sensor runs under dag.test():
        # with SQLite only the SequentialExecutor passes.
        os.environ["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
    # One key for every process of the session: an AssetWatcher's trigger is stored encrypted,
    # and a subprocess with a key of its own could not read what this process stored.
    if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
        from cryptography.fernet import Fernet

        os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _fresh_sign_in_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Signed-in tokens are cached per process and per host; each test starts without any."""
    from airflow_provider_jobmojito.auth import SIGN_IN_CACHE

    folder = tmp_path_factory.mktemp("token-cache")
    folder.chmod(0o700)
    monkeypatch.setenv("AIRFLOW__JOBMOJITO__TOKEN_CACHE_DIR", str(folder / "tokens"))
    SIGN_IN_CACHE.clear()
    yield
    SIGN_IN_CACHE.clear()


ConnFactory = Callable[..., str]


def logged_lines(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    """What hooks and operators logged: Airflow 3's task SDK logs through structlog to stdout,
    Airflow 2 through the standard library's logging (where its handlers vary by test order)."""
    if AIRFLOW_V3:
        return capfd.readouterr().out.splitlines()
    return [record.getMessage() for record in caplog.records]


@pytest.fixture
def jobmojito_conn(monkeypatch: pytest.MonkeyPatch, jobmojito_sandbox: Any) -> ConnFactory:
    """Define a ``jobmojito`` connection (JSON env-var form) aimed at the sandbox; return its id.

    Call it with connection fields to override (``password=``, ``login=``, ``extra={...}``,
    ``conn_id=``). By default it carries a fresh sandbox token and fast backoff for tests.
    """

    def define(conn_id: str = "jobmojito_default", **fields: Any) -> str:
        conn: dict[str, Any] = {
            "conn_type": "jobmojito",
            "host": jobmojito_sandbox.api_url,
            "password": jobmojito_sandbox.issue_token(),
            "extra": {"backoff_factor": 0.01, "backoff_max": 5, "timeout": 5},
        }
        conn.update(fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return define


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated, empty metadata database (sqlite in the test AIRFLOW_HOME), once per session."""
    from airflow.utils import db

    db.resetdb()


def _dagbag_module() -> Any:
    """Where DagBag lives: ``airflow.dag_processing.dagbag`` (3.2, 3.3), else ``airflow.models.dagbag``."""
    if importlib.util.find_spec("airflow.dag_processing.dagbag"):
        import airflow.dag_processing.dagbag as module
    else:  # Airflow 2.11 to 3.1
        import airflow.models.dagbag as module
    return module


def dag_bag(dag_folder: str | Path, **kwargs: Any) -> Any:
    """Parse DAG files the way the DAG processor does."""
    return _dagbag_module().DagBag(dag_folder=str(dag_folder), **kwargs)


def load_example_dag(module_name: str, dag_id: str) -> Any:
    """Parse a file of ``example_dags/`` the way the DAG processor does, and return one DAG.

    Airflow 3.2 and 3.3's ``dag.test()`` stores the DAGs folder's DAGs in the database by itself. On
    2.11 to 3.1 only the DAG processor does, so it is done here: without it a DAG's assets (datasets
    on Airflow 2) are unknown to the database, and producing an event on one records nothing.
    """
    folder = REPO / "example_dags"
    module = _dagbag_module()
    if module.__name__ == "airflow.dag_processing.dagbag":
        bag = dag_bag(folder / f"{module_name}.py")
    elif hasattr(module, "sync_bag_to_db"):  # 3.1
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag = dag_bag(folder / f"{module_name}.py", bundle_path=folder)
        module.sync_bag_to_db(bag, "dags-folder", None)
    elif AIRFLOW_V3:  # 3.0
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag = dag_bag(folder / f"{module_name}.py", bundle_path=folder)
        bag.sync_to_db("dags-folder", None)
    else:
        bag = dag_bag(folder / f"{module_name}.py")
        bag.sync_to_db()
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def run_inline_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()`` for a DAG defined in a test module rather than in the DAGs folder.

    Airflow 3.3's ``dag.test()`` runs only DAGs its database knows, so the DAG is stored under the
    ``dags-folder`` bundle first; Airflow 2.11 and 3.0 run any DAG object.
    """
    sync_bag_to_db = getattr(_dagbag_module(), "sync_bag_to_db", None)
    if sync_bag_to_db is not None:
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag = dag_bag(tempfile.mkdtemp())
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)


def masker_homes(*functions: Any) -> list[Any]:
    """The modules whose ``_secrets_masker`` the masking functions call: their own, or on Airflow
    3.1 the shared module that ``airflow.sdk.log`` imports it from when called."""
    import sys

    from airflow_provider_jobmojito import masking

    names = {masking.mask_secret.__module__, "airflow.sdk._shared.secrets_masker"}
    names.update(function.__module__ for function in functions)
    return [sys.modules[n] for n in sorted(names) if hasattr(sys.modules.get(n), "_secrets_masker")]


@pytest.fixture
def fresh_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty masker of Airflow's configured kind for the test: secrets other tests registered
    (Airflow 2.11 masks even one-letter ones, and its alternation may match a short one inside a
    key) cannot redact parts of the test's texts, and thousands of keys do not slow later tests."""
    import copy

    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_jobmojito import masking

    real = masking._local_masker()
    assert real is not None, "the masker's shape changed: mask_all would always fall back"
    fresh = copy.copy(real)
    fresh.patterns, fresh.replacer = set(), None
    for module in masker_homes(redact):
        monkeypatch.setattr(module, "_secrets_masker", lambda: fresh)
