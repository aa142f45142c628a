"""A connection stored in the metadata database, its password encrypted with the fernet key, works.

That is how a deployment keeps connections (``airflow connections add`` or the UI, after
``airflow db migrate`` has written a fernet key), unlike the environment-variable connections of
most tests, which Airflow never encrypts. Airflow 2.11 cannot decrypt them with cryptography 51 or
later; the hook then says so and names the fix instead of Airflow's "isn't defined".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG
from packaging.version import Version

from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook, fernet_defect
from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator
from tests.conftest import AIRFLOW_V3, run_inline_dag

POSITION = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
CRYPTOGRAPHY = Version(version("cryptography"))

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def stored_conn(jobmojito_sandbox: Any) -> Iterator[tuple[str, str]]:
    """A jobmojito connection with a static token as its password, in the metadata database."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    conn_id, token = f"jobmojito_stored_{uuid.uuid4().hex[:8]}", jobmojito_sandbox.issue_token()
    with create_session() as session:
        session.add(
            Connection(conn_id=conn_id, conn_type="jobmojito", host=jobmojito_sandbox.api_url, password=token)
        )
    yield conn_id, token
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()


def test_a_password_stored_encrypted_in_the_database_is_read_by_a_task(
    jobmojito_sandbox: Any, stored_conn: tuple[str, str]
) -> None:
    """Under dag.test(), as a worker reads it: on Airflow 3 through the Execution API."""
    from airflow.configuration import conf
    from airflow.models import Connection
    from airflow.utils.session import create_session

    conn_id, token = stored_conn
    assert conf.get("core", "fernet_key"), "tests/conftest.py sets a fernet key, as db migrate does"
    with create_session() as session:
        row = session.execute(Connection.__table__.select().where(Connection.conn_id == conn_id)).one()
    assert row.is_encrypted
    assert token not in row.password
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    start = pendulum.datetime(2026, 1, 1, tz="UTC")
    with DAG(f"{conn_id}_dag", schedule=None, start_date=start) as dag:
        SetInterviewStateOperator(
            task_id="t", position_id=POSITION, status="active", jobmojito_conn_id=conn_id
        )
    assert run_inline_dag(dag).state == "success"
    # The sandbox changes a position only for the token it issued: the password was decrypted.
    assert jobmojito_sandbox.position(POSITION)["status"] == "active"
    assert [call["status"] for call in jobmojito_sandbox.requests_log()] == [200]


def test_airflow_2_with_cryptography_51_or_later_is_a_fernet_defect_that_names_the_fix() -> None:
    """Judged as Airflow 2.11.2 would see this environment's cryptography, whatever its Airflow."""
    defect = fernet_defect(airflow_version="2.11.2")
    if CRYPTOGRAPHY.major < 51:
        assert defect is None
    else:
        assert defect is not None
        assert f"with cryptography {CRYPTOGRAPHY}" in defect
        assert 'pip install "cryptography<51"' in defect


def test_airflow_3_has_no_fernet_defect() -> None:
    assert fernet_defect(airflow_version="3.3.2") is None


def test_without_a_fernet_defect_a_missing_connection_is_airflows_own_error() -> None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    if not AIRFLOW_V3:
        assert fernet_defect() is None, "this environment's cryptography is one Airflow 2.11 can use"
    with pytest.raises(AirflowNotFoundException, match="jobmojito_nowhere"):
        _ = JobMojitoHook("jobmojito_nowhere").settings
