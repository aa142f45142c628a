"""A DAG with reschedule-mode sensors that poke too often, as a real deployment shows it.

Airflow loses such sensors (apache/airflow#71172; ``benchmarks/reschedule_loss.py`` measures it), so
the provider refuses them when the DAG is parsed. In a real deployment that is an import error the
user sees in the UI and the REST API, naming the parameters and the safe ways, and a DAG that never
exists, so no run can lose a sensor. The deployment's DAG processor parsed
``tests/e2e/dags/jobmojito_e2e_unsafe_reschedule.py`` before the tests started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.deployment import UNSAFE_RESCHEDULE_DAG_FILE, Deployment

pytestmark = pytest.mark.e2e

UNSAFE_DAG = "jobmojito_e2e_unsafe_reschedule"


def test_a_dag_with_a_short_reschedule_sensor_is_an_import_error_naming_the_safe_ways(
    deployment: Deployment,
) -> None:
    errors = deployment.api("GET", "/importErrors")["import_errors"]
    [error] = [e for e in errors if Path(e["filename"]).name == UNSAFE_RESCHEDULE_DAG_FILE.name]
    trace = error["stack_trace"]
    for part in (
        "JobMojitoArgumentError",
        "InterviewStateSensor 'wait_until_active': mode='reschedule' with poke_interval=5 s",
        "apache/airflow#71172",
        "deferrable=True",
        "poke_interval >= 60",
        "allow_short_reschedule=True",
    ):
        assert part in trace, part
    dags = deployment.api("GET", "/dags", params={"dag_id_pattern": UNSAFE_DAG})["dags"]
    assert dags == []
