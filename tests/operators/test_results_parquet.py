"""InterviewResultsToStorageOperator(format="parquet") over HTTP (the sandbox): the documented
schema, the same rows as the JSON Lines export, the same file on a retry, and a clear error
without pyarrow."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jobmojito.exceptions import JobMojitoUnavailableError
from airflow_provider_jobmojito.operators.results import InterviewResultsToStorageOperator
from airflow_provider_jobmojito.results_parquet import (
    RESULT_COLUMNS,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    ParquetResults,
    result_schema,
)
from airflow_provider_jobmojito.sandbox import SandboxServer
from tests.conftest import REPO

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

LIST_PATH = "/functions/v1/merchant-result-list"
START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def sandbox(jobmojito_sandbox: SandboxServer, jobmojito_conn: Any) -> SandboxServer:
    """Results updated evenly over four hours from ``START``; the default connection aims at it."""
    jobmojito_sandbox.change_results(create=4000, at=START.isoformat(), spread_seconds=4 * 3600)
    jobmojito_conn()
    return jobmojito_sandbox


def interval(hour: int) -> dict[str, datetime]:
    return {"data_interval_start": START + hour * HOUR, "data_interval_end": START + (hour + 1) * HOUR}


def stamp_ms(text: str) -> int:
    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_the_parquet_file_has_the_documented_schema_and_the_rows_of_the_json_lines_export(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    jsonl = InterviewResultsToStorageOperator(
        task_id="jsonl", destination=str(tmp_path / "jsonl"), page_size=300
    ).execute(interval(1))
    parquet = InterviewResultsToStorageOperator(
        task_id="parquet", destination=str(tmp_path / "parquet"), format="parquet", page_size=300
    ).execute(interval(1))
    assert Path(parquet["path"]).name == Path(jsonl["path"]).with_suffix(".parquet").name
    assert parquet["window"] == jsonl["window"]
    table = pq.read_table(parquet["path"])
    assert table.schema.equals(result_schema(pa), check_metadata=False)
    assert table.schema.metadata[SCHEMA_VERSION_KEY.encode()] == SCHEMA_VERSION.encode()
    assert str(table.schema.field("updated_at").type) == "timestamp[ms, tz=UTC]"
    assert str(table.schema.field("score").type) == "double"
    # The same rows in the same order: the row column is the JSON Lines file's lines.
    lines = Path(jsonl["path"]).read_text(encoding="utf-8").splitlines()
    assert parquet["count"] == jsonl["count"] == table.num_rows == len(lines) == 1000
    assert table.column("row").to_pylist() == lines
    rows = [json.loads(line) for line in lines]
    # Each typed column holds the row's value, typed.
    assert table.column("id").to_pylist() == [row["id"] for row in rows]
    assert table.column("interview_result_id").to_pylist() == [row["interview_result_id"] for row in rows]
    assert table.column("is_test").to_pylist() == [row["is_test"] for row in rows]
    assert table.column("score").to_pylist() == [row["score"] for row in rows]
    assert table.column("updated_at").cast(pa.int64()).to_pylist() == [
        stamp_ms(row["updated_at"]) for row in rows
    ]
    assert table.column("created_at").cast(pa.int64()).to_pylist() == [
        stamp_ms(row["created_at"]) for row in rows
    ]
    # A row group a page: the file was written page by page, never whole.
    assert pq.read_metadata(parquet["path"]).num_row_groups > 1
    assert sorted(os.listdir(tmp_path / "parquet")) == [Path(parquet["path"]).name]


def test_a_failed_parquet_try_leaves_no_file_and_the_retry_writes_the_same_bytes(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    operator = InterviewResultsToStorageOperator(
        task_id="export", destination=str(tmp_path), format="parquet", page_size=200
    )
    # The third page keeps failing past the retries: the first try dies mid-write.
    sandbox.add_fault("status", status=503, path=LIST_PATH, query={"offset": "396"}, count=100)
    with pytest.raises(JobMojitoUnavailableError):
        operator.execute(interval(2))
    assert os.listdir(tmp_path) == []
    sandbox.clear_faults()
    first = operator.execute(interval(2))
    content = Path(first["path"]).read_bytes()
    second = operator.execute(interval(2))
    assert second == first
    assert first["count"] == 1000
    assert Path(second["path"]).read_bytes() == content
    assert os.listdir(tmp_path) == [Path(first["path"]).name]


def test_without_pyarrow_the_export_fails_naming_the_extra_before_any_request(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Built while pyarrow is missing: construction (the DAG's parse) does not need it.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    operator = InterviewResultsToStorageOperator(
        task_id="export", destination=str(tmp_path / "out"), format="parquet"
    )
    before = len(sandbox.requests_log())
    with pytest.raises(ImportError, match=re.escape('pip install "airflow-provider-jobmojito[parquet]"')):
        operator.execute(interval(1))
    assert len(sandbox.requests_log()) == before
    assert not (tmp_path / "out").exists()


def test_the_provider_and_the_operator_import_without_pyarrow() -> None:
    """pyarrow is imported only when a Parquet file is written (an import that fails in a fresh
    interpreter stands for a worker without the extra)."""
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from airflow_provider_jobmojito.operators.results import InterviewResultsToStorageOperator\n"
        "op = InterviewResultsToStorageOperator(task_id='t', destination='out', format='parquet')\n"
        "print(op.format)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "parquet"


def test_a_bad_format_is_refused_when_built_naming_the_parameter_and_the_formats() -> None:
    with pytest.raises(ValueError, match=r"format must be one of 'jsonl', 'parquet'; got 'csv'"):
        InterviewResultsToStorageOperator(task_id="export", destination="out", format="csv")


def test_a_value_that_does_not_fit_its_column_is_null_there_and_kept_whole_in_row() -> None:
    rows = [
        {
            "id": "r1",
            "score": "4.5",  # text, not a number
            "is_test": 0,  # a number, not a boolean
            "duration_ds": 12,
            "recruiter_risks": ["late", {"kind": "noise"}],
            "created_at": "2026-01-01T10:00:00",  # no offset: no instant
            "updated_at": "2026-01-01T12:00:00.123456+02:00",
            "added_by_the_api_later": {"x": 1},
        },
        {"id": "r2", "score": True, "updated_at": "not a date"},
    ]
    buffer = io.BytesIO()
    with ParquetResults(buffer, json.dumps) as parquet:
        assert parquet.write(rows) == 2
        assert parquet.write([]) == 0
    table = pq.read_table(pa.BufferReader(buffer.getvalue()))
    assert table.column("score").to_pylist() == [None, None]
    assert table.column("is_test").to_pylist() == [None, None]
    assert table.column("duration_ds").to_pylist() == [12.0, None]
    assert table.column("recruiter_risks").to_pylist() == ['["late",{"kind":"noise"}]', None]
    assert table.column("created_at").to_pylist() == [None, None]
    # Converted to UTC, to the millisecond.
    assert table.column("updated_at").to_pylist()[0] == datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert table.column("updated_at").to_pylist()[1] is None
    assert [json.loads(text) for text in table.column("row").to_pylist()] == rows


def test_the_schema_table_in_the_docs_is_the_declared_columns() -> None:
    text = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", text, flags=re.MULTILINE)
    arrow = {
        "string": "string",
        "bool": "bool",
        "float64": "double",
        "timestamp": "timestamp[ms, tz=UTC]",
        "json": "string (JSON)",
    }
    assert documented == [(name, arrow[kind]) for name, kind, _ in RESULT_COLUMNS]
