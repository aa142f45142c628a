"""After real task runs, the task log holds each call's line and neither token nor signing key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AIRFLOW_V3, AIRFLOW_VERSION, REPO

POSITION = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"

if not AIRFLOW_V3:
    NO_TASK_LOG = (
        "configures the Task SDK's task logging (airflow.sdk.log), which Airflow 2 does not have; "
        "there the masker is covered by tests/hooks/test_secrets.py"
    )
elif AIRFLOW_VERSION.release < (3, 1):
    NO_TASK_LOG = (
        "Airflow 3.0's airflow.sdk.log.configure_logging() writes only structlog's own events to the "
        "file: under dag.test() the operators' standard-library log lines go to the console, so there "
        "is no task log to read; tests/hooks/test_secrets.py covers the masker"
    )
else:
    NO_TASK_LOG = ""


@pytest.mark.skipif(bool(NO_TASK_LOG), reason=NO_TASK_LOG)
@pytest.mark.usefixtures("airflow_db")
def test_task_logs_are_masked(jobmojito_sandbox: Any, jobmojito_conn: Any, tmp_path: Path) -> None:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    jobmojito_conn()
    token = json.loads(os.environ["AIRFLOW_CONN_JOBMOJITO_DEFAULT"])["password"]
    log_file = tmp_path / "task.log"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.example_dags.task_log_run",
            str(log_file),
            str(tmp_path / "out"),
            POSITION,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"careers": "success", "careless": "success", "key_registered": True}

    log = log_file.read_text()
    signing_key = jobmojito_sandbox.position(POSITION)["embed_signing_key"]
    assert f"position {POSITION} -> embedding on (" in log
    assert f"position {POSITION} -> active (" in log
    # Airflow's own JWT pattern may redact the token first, leaving its "eyJ" prefix.
    assert re.search(r"careless leak: key=\*\*\* token=(eyJ)?\*\*\*", log)
    assert signing_key not in log
    assert token not in log
    for stream in (result.stdout, result.stderr):
        assert signing_key not in stream


@pytest.mark.skipif(bool(NO_TASK_LOG), reason=NO_TASK_LOG)
@pytest.mark.usefixtures("airflow_db")
def test_keys_of_a_bulk_call_are_masked_in_the_task_log(
    jobmojito_sandbox: Any, jobmojito_conn: Any, tmp_path: Path
) -> None:
    """Registered in one batch at the end of the bulk call, and masked in the lines logged after."""
    ids = [str(uuid.uuid4()) for _ in range(150)]
    # One key holds "eyJ" (a random one does about once in 6,000): Airflow's log pipeline rewrites
    # a line from there as a JWT before the masker runs, which showed the part of the key before it.
    jwt_lookalike = "CPcH9BM-XLJ-nsm_HrcY7Vf3GIolkZ6E2eyJqT5wUx0"
    lookalike = {"embed_id": "e-lookalike", "embed_signing_key": jwt_lookalike}
    jobmojito_sandbox.seed(
        [
            {"id": position_id, "status": "draft", **(lookalike if n == 0 else {})}
            for n, position_id in enumerate(ids)
        ]
    )
    jobmojito_conn()
    log_file = tmp_path / "task.log"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.example_dags.task_log_run",
            str(log_file),
            str(tmp_path / "out"),
            ids[0],
            ",".join(ids),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"bulk": "success", "keys": 150, "registered": True}

    log = log_file.read_text()
    leaks = [line for line in log.splitlines() if "bulk leak:" in line]
    # Both counts, so that a failure says whether a line is missing or one is not masked.
    assert (len(leaks), sum("bulk leak: key=***" in line for line in leaks)) == (150, 150)
    keys = [jobmojito_sandbox.position(position_id)["embed_signing_key"] for position_id in ids]
    assert jwt_lookalike in keys
    assert jwt_lookalike.split("eyJ", maxsplit=1)[0] not in log
    for key in keys:
        assert key not in log
        assert key not in result.stdout
        assert key not in result.stderr
