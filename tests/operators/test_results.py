"""InterviewResultsToStorageOperator over HTTP (the sandbox) and in real DAG runs: one file per
window, written atomically; a retry or a backfill overwrites; the watermark on Airflow 3.3."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from airflow.providers.common.compat.sdk import DAG, Asset, ObjectStoragePath

from airflow_provider_jobmojito.exceptions import JobMojitoConfigError, JobMojitoUnavailableError

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2
    from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_provider_jobmojito.operators import results as results_operator
from airflow_provider_jobmojito.operators.results import InterviewResultsToStorageOperator
from airflow_provider_jobmojito.sandbox import SandboxServer
from tests.conftest import AIRFLOW_V3, AIRFLOW_VERSION, REPO, run_inline_dag

LIST_PATH = "/functions/v1/merchant-result-list"
START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SETTLE = timedelta(minutes=5)
AIRFLOW_V3_3 = (AIRFLOW_VERSION.major, AIRFLOW_VERSION.minor) >= (3, 3)


@pytest.fixture
def sandbox(jobmojito_sandbox: SandboxServer, jobmojito_conn: Any) -> SandboxServer:
    """Results updated evenly over four hours from ``START``; the default connection aims at it."""
    jobmojito_sandbox.change_results(create=4000, at=START.isoformat(), spread_seconds=4 * 3600)
    jobmojito_conn()
    return jobmojito_sandbox


def interval(hour: int) -> dict[str, datetime]:
    return {"data_interval_start": START + hour * HOUR, "data_interval_end": START + (hour + 1) * HOUR}


def lines(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def in_window(sandbox: SandboxServer, after: datetime, before: datetime) -> set[str]:
    """The ids whose updated_at is in the window, read from the sandbox's own listing."""
    token = sandbox.issue_token()
    rows = requests.get(
        f"{sandbox.api_url}/merchant-result-list",
        params={"order_by": "updated_at_newest", "limit": 1000, "offset": 0},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()["data"]
    offset = 1000
    found = set()
    while rows:
        found |= {r["id"] for r in rows if after <= datetime.fromisoformat(r["updated_at"]) < before}
        rows = requests.get(
            f"{sandbox.api_url}/merchant-result-list",
            params={"order_by": "updated_at_newest", "limit": 1000, "offset": offset},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()["data"]
        offset += 1000
    return found


class TestConstruction:
    @pytest.mark.parametrize(
        ("kwargs", "named"),
        [
            ({"destination": ""}, "destination"),
            ({"destination": "results/", "format": "csv"}, "format"),
            ({"destination": "results/", "settle": timedelta(minutes=-1)}, "settle"),
            ({"destination": "results/", "since_last_run": True}, "since_last_run"),
            ({"destination": "results/", "filters": {"order_by": "score"}}, "order_by"),
            ({"destination": "results/", "filters": {"type": "webinar"}}, "type"),
            ({"destination": "results/", "updated_after": "yesterday"}, "updated_after"),
            ({"destination": "results/", "updated_after": datetime(2026, 1, 1)}, "updated_after"),  # naive
            ({"destination": "results/", "page_size": 5000}, "page_size"),
        ],
    )
    def test_bad_arguments_are_refused_when_built_naming_the_parameter(
        self, jobmojito_sandbox: SandboxServer, kwargs: dict[str, Any], named: str
    ) -> None:
        with pytest.raises(ValueError, match=named):
            InterviewResultsToStorageOperator(task_id="export", **kwargs)
        assert jobmojito_sandbox.requests_log() == []

    def test_a_templated_window_is_checked_when_rendered_not_when_built(self) -> None:
        operator = InterviewResultsToStorageOperator(
            task_id="export", destination="{{ params.folder }}", updated_after="{{ params.after }}"
        )
        assert operator.template_fields == ("destination", "updated_after", "updated_before")


class TestExport:
    def test_the_data_interval_moved_back_by_settle_is_exported_to_a_file_named_after_it(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        operator = InterviewResultsToStorageOperator(task_id="export", destination=str(tmp_path))
        outcome = operator.execute(interval(1))
        after, before = START + HOUR - SETTLE, START + 2 * HOUR - SETTLE
        assert outcome["path"] == str(tmp_path / "results_20260101T005500Z_20260101T015500Z.jsonl")
        assert outcome["window"] == {"updated_after": after.isoformat(), "updated_before": before.isoformat()}
        rows = lines(outcome["path"])
        assert outcome["count"] == len(rows) == 1000
        assert {row["id"] for row in rows} == in_window(sandbox, after, before)
        assert sorted(os.listdir(tmp_path)) == [Path(outcome["path"]).name]

    def test_test_results_are_left_out_unless_asked_for(self, sandbox: SandboxServer, tmp_path: Path) -> None:
        sandbox.change_results(create=7, at=(START + HOUR).isoformat(), is_test=True)
        plain = InterviewResultsToStorageOperator(task_id="plain", destination=str(tmp_path / "plain"))
        with_tests = InterviewResultsToStorageOperator(
            task_id="all", destination=str(tmp_path / "all"), include_test=True
        )
        rows = lines(plain.execute(interval(1))["path"])
        assert not any(row["is_test"] for row in rows)
        assert len(lines(with_tests.execute(interval(1))["path"])) == len(rows) + 7

    def test_a_failed_try_leaves_no_file_and_the_retry_writes_the_same_file_each_time(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        operator = InterviewResultsToStorageOperator(
            task_id="export", destination=str(tmp_path), page_size=200
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
        assert Path(second["path"]).read_bytes() == content
        assert os.listdir(tmp_path) == [Path(first["path"]).name]

    def test_a_killed_task_leaves_no_partial_file_and_the_next_try_cleans_up_after_it(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        # The second page is held back, so the task is killed with the first page written.
        sandbox.add_fault("delay", seconds=120, path=LIST_PATH, query={"offset": "998"})
        script = textwrap.dedent(
            f"""
            from datetime import datetime
            from airflow_provider_jobmojito.operators.results import InterviewResultsToStorageOperator
            operator = InterviewResultsToStorageOperator(task_id="export", destination={str(tmp_path)!r})
            operator.execute({{
                "data_interval_start": datetime.fromisoformat({(START).isoformat()!r}),
                "data_interval_end": datetime.fromisoformat({(START + 4 * HOUR).isoformat()!r}),
            }})
            """
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        task = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO)
        try:
            temporary = wait_for(lambda: [p for p in tmp_path.glob(".*.tmp") if p.stat().st_size > 0], task)
        finally:
            task.send_signal(signal.SIGKILL)
            task.wait()
        assert temporary
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
        sandbox.clear_faults()
        operator = InterviewResultsToStorageOperator(task_id="export", destination=str(tmp_path))
        outcome = operator.execute({"data_interval_start": START, "data_interval_end": START + 4 * HOUR})
        assert os.listdir(tmp_path) == [Path(outcome["path"]).name]
        assert outcome["count"] == len(lines(outcome["path"]))

    def test_rows_updated_during_the_export_are_in_this_window_once_or_in_the_next(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        window = {"updated_after": START.isoformat(), "updated_before": (START + 4 * HOUR).isoformat()}
        operator = InterviewResultsToStorageOperator(task_id="export", destination=str(tmp_path), **window)
        # Before the second and the third page, results are updated and created (stamped now,
        # after the window): through the sandbox's fault API.
        for offset in ("998", "1996"):
            spec = {"kind": "results", "update_results": 150, "create_results": 20, "path": LIST_PATH}
            spec["query"] = {"offset": offset}
            assert requests.post(f"{sandbox.url}/_sandbox/faults", json=spec, timeout=5).status_code == 200
        rows = lines(operator.execute({})["path"])
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids))
        assert set(ids) == in_window(sandbox, START, START + 4 * HOUR)
        # The sandbox stamps each change a millisecond after the last, which may run ahead of its
        # clock: the next window ends well after every stamp.
        moved = InterviewResultsToStorageOperator(
            task_id="next",
            destination=str(tmp_path),
            updated_after=(START + 4 * HOUR).isoformat(),
            updated_before=(datetime.now(UTC) + HOUR).isoformat(),
        ).execute({})
        assert moved["count"] == 340
        assert set(ids).isdisjoint(row["id"] for row in lines(moved["path"]))
        assert len(ids) + moved["count"] == 4000 + 40


def wait_for(condition: Any, process: subprocess.Popen[bytes]) -> Any:
    """What ``condition()`` gives once it is truthy; fails if ``process`` ends first (a bounded
    wait on an event, not a sleep standing in for one)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the task ended ({process.returncode}) before the condition held")
        time.sleep(0.01)
    pytest.fail("the condition did not hold within two minutes")


def dated(moment: datetime) -> dict[str, datetime]:
    """``dag.test()``'s argument naming the run's date: ``logical_date`` (Airflow 3) or
    ``execution_date`` (Airflow 2)."""
    return {"logical_date" if AIRFLOW_V3 else "execution_date": moment}


def hourly_dag(dag_id: str, destination: Path, **kwargs: Any) -> DAG:
    with DAG(
        dag_id,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        InterviewResultsToStorageOperator(task_id="export", destination=str(destination), **kwargs)
    return dag


@pytest.mark.usefixtures("airflow_db")
class TestInDagRuns:
    def test_a_backfill_of_three_past_intervals_exports_each_result_once_in_its_window(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        dag = hourly_dag("results_backfill", tmp_path, outlets=[Asset("jobmojito_results_backfill")])
        starts = []
        for hour in (1, 2, 3):
            run = run_inline_dag(dag, **dated(START + hour * HOUR))
            assert run.state == "success"
            starts.append(run.data_interval_start)
        # Three consecutive hours (which ones a logical date names differs between Airflow 2 and 3).
        assert [b - a for a, b in itertools.pairwise(starts)] == [HOUR, HOUR]
        first = starts[0] - SETTLE
        files = sorted(tmp_path.glob("results_*.jsonl"))
        assert [f.name for f in files] == [
            f"results_{(first + n * HOUR):%Y%m%dT%H%M%S}Z_{(first + (n + 1) * HOUR):%Y%m%dT%H%M%S}Z.jsonl"
            for n in range(3)
        ]
        ids = [row["id"] for f in files for row in lines(f)]
        assert len(ids) == len(set(ids))
        assert set(ids) == in_window(sandbox, first, first + 3 * HOUR)
        # Run again for the first interval: the file is overwritten, not doubled.
        content = files[0].read_bytes()
        run_inline_dag(dag, **dated(START + HOUR))
        assert sorted(tmp_path.glob("results_*.jsonl")) == files
        assert files[0].read_bytes() == content

    @pytest.mark.skipif(not AIRFLOW_V3, reason="asset events with extra are read through Airflow 3's models")
    def test_the_outlet_event_carries_the_count_path_and_window(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        from airflow.models.asset import AssetEvent
        from airflow.utils.session import create_session

        asset = Asset("jobmojito_results_event")
        dag = hourly_dag("results_event", tmp_path, outlets=[asset])
        assert run_inline_dag(dag, **dated(START + HOUR)).state == "success"
        with create_session() as session:
            events = session.query(AssetEvent).filter(AssetEvent.source_dag_id == "results_event").all()
            extras = [event.extra for event in events]
        assert len(extras) == 1
        assert extras[0]["count"] == len(lines(extras[0]["path"]))
        assert extras[0]["path"].startswith(str(tmp_path))
        assert set(extras[0]["window"]) == {"updated_after", "updated_before"}

    @pytest.mark.skipif(not AIRFLOW_V3_3, reason="the asset state store is new in Airflow 3.3")
    def test_since_last_run_exports_from_the_watermark_the_previous_run_left(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        asset = Asset("jobmojito_results_watermark")
        dag = hourly_dag("results_since", tmp_path, outlets=[asset], since_last_run=True, settle=timedelta(0))
        first = run_inline_dag(dag, **dated(START + HOUR))
        assert first.state == "success"
        first_out = first.get_task_instance("export").xcom_pull(task_ids="export")
        assert first_out["count"] == 4000
        # Stamped now by the sandbox's clock: after the first window ended, before the second ends.
        created = set(sandbox.change_results(create=25)["created"])
        second = run_inline_dag(dag, **dated(START + 2 * HOUR))
        assert second.state == "success"
        second_out = second.get_task_instance("export").xcom_pull(task_ids="export")
        assert second_out["window"]["updated_after"] == first_out["window"]["updated_before"]
        assert {row["id"] for row in lines(second_out["path"])} == created

    @pytest.mark.skipif(not AIRFLOW_V3_3, reason="the task state store is new in Airflow 3.3")
    def test_a_retry_exports_the_window_the_first_try_fixed(
        self, sandbox: SandboxServer, tmp_path: Path
    ) -> None:
        dag = hourly_dag(
            "results_retry",
            tmp_path,
            outlets=[Asset("jobmojito_results_retry")],
            since_last_run=True,
            settle=timedelta(0),
            retries=1,
            retry_delay=timedelta(0),
        )
        # The first try's first page creates results (stamped after its window was fixed), then its
        # second page fails past the connection's retries.
        spec = {"kind": "results", "create_results": 5, "path": LIST_PATH, "query": {"offset": "0"}}
        assert requests.post(f"{sandbox.url}/_sandbox/faults", json=spec, timeout=5).status_code == 200
        sandbox.add_fault("status", status=503, path=LIST_PATH, query={"offset": "998"}, count=6)
        run = run_inline_dag(dag, **dated(START + HOUR))
        assert run.state == "success"
        ti = run.get_task_instance("export")
        assert ti.try_number == 2
        outcome = ti.xcom_pull(task_ids="export")
        # The retry kept the first try's window: the five results created after it are not in it.
        assert outcome["count"] == 4000
        assert len(sandbox.app.results) == 4005
        assert sandbox.faults() == []


class Store:
    """What the operator uses of Airflow 3.3's task and asset state store accessors (``get``,
    ``set``), over a dict: a cleared task instance keeps its run's task state (Airflow keeps it
    after success unless ``[state_store] clear_on_success``), which ``dag.test()`` cannot show, as
    it deletes the run it runs again."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def test_clearing_an_earlier_run_exports_its_window_again_and_never_moves_the_watermark_back(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    asset = Asset("jobmojito_results_cleared")
    operator = InterviewResultsToStorageOperator(
        task_id="export", destination=str(tmp_path), outlets=[asset], since_last_run=True, settle=timedelta(0)
    )
    assets = {asset: Store()}
    runs = [Store(), Store(), Store()]
    moments = iter([START + 4 * HOUR, START + 5 * HOUR, START + 6 * HOUR])
    operator.now = lambda: next(moments)
    first = operator.execute({"task_state_store": runs[0], "asset_state_store": assets})
    second = operator.execute({"task_state_store": runs[1], "asset_state_store": assets})
    # The first run is cleared: it exports the window it pinned again, over its own file.
    again = operator.execute({"task_state_store": runs[0], "asset_state_store": assets})
    assert again == first
    third = operator.execute({"task_state_store": runs[2], "asset_state_store": assets})
    assert third["window"]["updated_after"] == second["window"]["updated_before"]


def test_an_end_without_a_start_is_refused_naming_both_before_any_request(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    operator = InterviewResultsToStorageOperator(
        task_id="export", destination=str(tmp_path), updated_before=(START + HOUR).isoformat()
    )
    sandbox.clear_requests()
    with pytest.raises(ValueError, match=r"updated_before.*updated_after"):
        operator.execute(interval(1))
    assert sandbox.requests_log() == []


def test_an_airflow_that_cannot_make_an_object_storage_path_fails_naming_the_fix_before_any_request(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow 2.11.0 with universal-pathlib 0.3 fails so (make test-lowest pins <0.3 for that reason);
    # no environment here has the pair, so the path class fails as upath 0.3 makes it fail.
    class Incompatible(ObjectStoragePath):  # type: ignore[misc]
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            raise TypeError(
                "ObjectStoragePath(...) detected protocol file which is incompatible with ObjectStoragePath."
            )

    operator = InterviewResultsToStorageOperator(task_id="export", destination=str(tmp_path))
    monkeypatch.setattr(results_operator, "ObjectStoragePath", Incompatible)
    sandbox.clear_requests()
    with pytest.raises(JobMojitoConfigError, match=r'pip install "universal-pathlib<0.3"'):
        operator.execute(interval(1))
    assert sandbox.requests_log() == []
