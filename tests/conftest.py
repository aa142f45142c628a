"""Test set-up: a private AIRFLOW_HOME, and connections that point at the JobMojito sandbox.

The sandbox fixture itself (``jobmojito_sandbox``) comes from the provider's pytest plugin,
``airflow_provider_jobmojito.sandbox.pytest_plugin``, registered as a ``pytest11`` entry point.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO.parent / "shared" / "contract" / "jobmojito-openapi.json"


def pytest_configure(config: pytest.Config) -> None:
    # Before anything imports airflow: it reads its configuration once, at import.
    home = Path(os.environ.get("TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="jobmojito-airflow-home-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ.pop("AIRFLOW_CONN_JOBMOJITO_DEFAULT", None)


@pytest.fixture(autouse=True)
def _fresh_sign_in_cache() -> Iterator[None]:
    """Signed-in tokens are cached per process; each test starts without any."""
    from airflow_provider_jobmojito.auth import SIGN_IN_CACHE

    SIGN_IN_CACHE.clear()
    yield
    SIGN_IN_CACHE.clear()


ConnFactory = Callable[..., str]


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


def load_example_dag(module_name: str, dag_id: str) -> Any:
    """Parse a file of ``example_dags/`` the way the DAG processor does, and return one DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "example_dags" / f"{module_name}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def run_inline_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()`` for a DAG defined in a test module rather than in the DAGs folder."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=tempfile.mkdtemp())
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)
