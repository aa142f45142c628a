"""Each example DAG imports cleanly and runs end to end under dag.test() against the sandbox."""

from __future__ import annotations

import stat
import uuid
import warnings
from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.conftest import AIRFLOW_V3, REPO, dag_bag, load_example_dag

P1 = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"
P2 = "9b1d3c52-7e0a-4f7b-8c55-2a1e6d4b0f10"
P3 = "5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d"

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def sandbox(jobmojito_sandbox: Any, jobmojito_conn: Any) -> Any:
    jobmojito_sandbox.seed(
        [
            {"id": P1, "status": "draft"},
            {"id": P2, "status": "active", "embedded": True},
            {"id": P3, "status": "active", "embedded": True},
        ]
    )
    jobmojito_conn()
    return jobmojito_sandbox


def test_every_example_dag_imports_without_errors_or_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = dag_bag(REPO / "example_dags")
    assert bag.import_errors == {}
    expected = [
        "jobmojito_activate_positions",
        "jobmojito_archive_closed_positions",
        "jobmojito_careers_page_embed",
        "jobmojito_embed_in_batches",
        "jobmojito_hiring_closed",
        "jobmojito_positions_as_code",
        "jobmojito_results_to_storage",
    ]
    if AIRFLOW_V3:  # AssetWatcher
        expected.insert(2, "jobmojito_archive_when_completed")
    assert sorted(bag.dag_ids) == expected
    ours = [w for w in caught if issubclass(w.category, DeprecationWarning | FutureWarning)]
    assert ours == []


class TestActivatePositions:
    def test_runs_at_eight_on_weekdays_berlin_time(self) -> None:
        dag = load_example_dag("jobmojito_activate_positions", "jobmojito_activate_positions")
        # What the scheduler computes with: the serialized timetable, decoded.
        timetable = _serialized_round_trip(dag.timetable)
        after = pendulum.datetime(2026, 7, 3, 12, tz="Europe/Berlin")  # a Friday, summer time
        info = timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=_restriction(after),
        )
        assert info.run_after.in_tz("Europe/Berlin") == pendulum.datetime(2026, 7, 6, 8, tz="Europe/Berlin")

    def test_activates_the_positions_given_as_params(self, sandbox: Any) -> None:
        dag = load_example_dag("jobmojito_activate_positions", "jobmojito_activate_positions")
        run = dag.test(run_conf={"position_ids": [P1, P2]})
        assert run.state == "success"
        assert [sandbox.position(p)["status"] for p in (P1, P2)] == ["active", "active"]
        labels = sorted(ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "activate")
        assert labels == sorted([P1, P2])

    def test_falls_back_to_the_airflow_variable(self, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIRFLOW_VAR_JOBMOJITO_POSITIONS_TO_ACTIVATE", f'["{P1}"]')
        dag = load_example_dag("jobmojito_activate_positions", "jobmojito_activate_positions")
        assert dag.test().state == "success"
        assert sandbox.position(P1)["status"] == "active"


class TestArchiveAfterHiring:
    def test_the_producer_records_the_closed_positions_on_the_asset(self, sandbox: Any) -> None:
        from airflow.utils.session import create_session

        if AIRFLOW_V3:
            from airflow.models.asset import AssetEvent as Event
        else:  # Airflow 2 calls assets datasets
            from airflow.models.dataset import DatasetEvent as Event

        dag = load_example_dag("jobmojito_archive_after_hiring", "jobmojito_hiring_closed")
        run = dag.test(run_conf={"position_ids": [P2, P3]})
        assert run.state == "success"
        with create_session() as session:
            events = session.query(Event).filter(Event.source_run_id == run.run_id).all()
            assert [e.extra["position_ids"] for e in events] == [[P2, P3]]
            asset = events[0].asset if AIRFLOW_V3 else events[0].dataset
            assert asset.uri == "jobmojito://positions/hiring-closed"

    def test_archives_each_closed_position_with_embedding_off(self, sandbox: Any) -> None:
        dag = load_example_dag("jobmojito_archive_after_hiring", "jobmojito_archive_closed_positions")
        # A repeat, even spelt in capitals, is archived once instead of failing the batch.
        run = dag.test(run_conf={"position_ids": [P2, P3, P2.upper()]})
        assert run.state == "success"
        for position in (P2, P3):
            stored = sandbox.position(position)
            assert (stored["status"], stored["embed_id"]) == ("archived", None)
        assert sandbox.position(P1)["status"] == "draft"
        calls = [r["json"] for r in sandbox.requests_log() if r["path"].endswith("set-state")]
        assert sorted(c["position_id"] for c in calls) == sorted([P2, P3])
        ti = run.get_task_instance("archive")
        assert ti.xcom_pull(task_ids="archive", key="results") == [
            {"position_id": P2, "ok": True},
            {"position_id": P3, "ok": True},
        ]


class TestCareersPageEmbed:
    def test_embeds_publishes_the_snippet_then_activates(self, sandbox: Any, tmp_path: Path) -> None:
        dag = load_example_dag("jobmojito_careers_page_embed", "jobmojito_careers_page_embed")
        stale = tmp_path / f"{P1}.env"  # left by an earlier run, readable by all
        stale.write_text("old\n")
        stale.chmod(0o644)
        run = dag.test(run_conf={"position_id": P1, "output_dir": str(tmp_path)})
        assert run.state == "success"
        stored = sandbox.position(P1)
        embed_url = f"https://try.interviewmojito.com/embed?embed_id={stored['embed_id']}"
        ti = run.get_task_instance("enable_embedding")
        assert ti.xcom_pull(task_ids="enable_embedding", key="embed_id") == stored["embed_id"]
        assert ti.xcom_pull(task_ids="enable_embedding", key="embed_url") == embed_url
        assert (
            ti.xcom_pull(task_ids="enable_embedding", key="embed_signing_key") == stored["embed_signing_key"]
        )
        assert stored["embed_signing_key"] not in str(ti.xcom_pull(task_ids="enable_embedding"))

        snippet = (tmp_path / f"{P1}.html").read_text()
        assert f'src="{embed_url.replace("&", "&amp;")}"' in snippet
        backend_env = tmp_path / f"{P1}.env"
        assert stat.S_IMODE(backend_env.stat().st_mode) == 0o600
        assert f"JOBMOJITO_EMBED_SIGNING_KEY={stored['embed_signing_key']}" in backend_env.read_text()
        assert stored["status"] == "active"
        order = [r["json"] for r in sandbox.requests_log() if r["path"].endswith("set-state")]
        assert order == [{"position_id": P1, "is_embedded": True}, {"position_id": P1, "status": "active"}]

    def test_an_unknown_position_fails_at_the_first_read_and_changes_nothing(
        self, sandbox: Any, tmp_path: Path
    ) -> None:
        dag = load_example_dag("jobmojito_careers_page_embed", "jobmojito_careers_page_embed")
        run = dag.test(run_conf={"position_id": str(uuid.uuid4()), "output_dir": str(tmp_path)})
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == "failed"
        assert states == {
            "wait_until_prepared": "failed",
            "enable_embedding": "upstream_failed",
            "publish_careers_snippet": "upstream_failed",
            "activate": "upstream_failed",
        }
        assert list(tmp_path.iterdir()) == []
        assert not any(r["path"].endswith("set-state") for r in sandbox.requests_log())

    def test_waits_while_the_interview_is_prepared(self, sandbox: Any, tmp_path: Path) -> None:
        import threading

        sandbox.admin_set_status(P1, "preparing")
        reads = lambda: sum(1 for r in sandbox.requests_log() if "interview-" in r["path"])  # noqa: E731
        done = threading.Event()

        def prepare() -> None:  # JobMojito finishes preparing once the sensor has looked twice
            while not done.wait(0.05):
                if reads() >= 2:
                    sandbox.admin_set_status(P1, "draft")
                    return

        threading.Thread(target=prepare, daemon=True).start()
        dag = load_example_dag("jobmojito_careers_page_embed", "jobmojito_careers_page_embed")
        dag.get_task("wait_until_prepared").poke_interval = 0.5
        try:
            run = dag.test(run_conf={"position_id": P1, "output_dir": str(tmp_path)})
        finally:
            done.set()
        assert run.state == "success"
        assert sandbox.position(P1)["status"] == "active"


def _serialized_round_trip(timetable: Any) -> Any:
    """The timetable as the scheduler gets it: serialized with the DAG, then decoded."""
    try:
        from airflow.serialization.decoders import decode_timetable
        from airflow.serialization.encoders import encode_timetable
    except ImportError:  # before Airflow 3.2
        from airflow.serialization.serialized_objects import decode_timetable, encode_timetable
    return decode_timetable(encode_timetable(timetable))


def _restriction(after: pendulum.DateTime) -> Any:
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=after, latest=None, catchup=True)


class TestEmbedInBatches:
    def test_embeds_every_position_in_one_mapped_task_per_batch(self, sandbox: Any) -> None:
        ids = [str(uuid.uuid4()) for _ in range(5)]
        sandbox.seed([{"id": position_id, "status": "active"} for position_id in ids])
        dag = load_example_dag("jobmojito_embed_in_batches", "jobmojito_embed_in_batches")
        assert dag.params["batch_size"] == 100

        run = dag.test(run_conf={"position_ids": ids, "batch_size": 2})

        assert run.state == "success"
        embeds = sorted(
            (ti for ti in run.get_task_instances() if ti.task_id == "embed"), key=lambda ti: ti.map_index
        )
        assert [ti.rendered_map_index for ti in embeds] == ["2 positions", "2 positions", "1 positions"]
        # Each mapped task pushed the keys of its own batch, by position id.
        pushed: dict[str, str] = {}
        for ti in embeds:
            keys = ti.xcom_pull(task_ids="embed", map_indexes=ti.map_index, key="embed_signing_keys")
            assert len(keys) == (2 if ti.map_index < 2 else 1)
            pushed.update(keys)
        assert pushed == {p: sandbox.position(p)["embed_signing_key"] for p in ids}
        assert all(pushed.values())
        assert {sandbox.position(p)["status"] for p in ids} == {"active"}


@pytest.mark.skipif(not AIRFLOW_V3, reason="AssetWatcher needs Airflow 3: on 2.11 the file defines no DAG")
class TestArchiveWhenCompleted:
    def test_is_scheduled_on_an_asset_watched_for_completed_positions(self) -> None:
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateChangeTrigger

        dag = load_example_dag("jobmojito_archive_when_completed", "jobmojito_archive_when_completed")
        [asset] = dag.timetable.asset_condition.objects
        [watcher] = asset.watchers
        assert isinstance(watcher.trigger, InterviewStateChangeTrigger)
        assert watcher.trigger.status == ["completed"]

    def test_a_manual_run_archives_the_positions_given(self, sandbox: Any) -> None:
        dag = load_example_dag("jobmojito_archive_when_completed", "jobmojito_archive_when_completed")
        run = dag.test(run_conf={"position_ids": [P1, P2.upper()]})
        assert run.state == "success"
        assert [sandbox.position(p)["status"] for p in (P1, P2)] == ["archived", "archived"]


class TestPositionsAsCode:
    @staticmethod
    def run(dag: Any) -> Any:
        # Nobody can click in a test: the approval step (Airflow 3.1+) is marked approved.
        if "approve" in dag.task_ids:
            return dag.test(mark_success_pattern="^approve$")
        return dag.test()

    def test_plans_the_spec_file_then_applies_the_plan(self, sandbox: Any) -> None:
        dag = load_example_dag("jobmojito_positions_as_code", "jobmojito_positions_as_code")
        run = self.run(dag)
        assert run.state == "success"
        # As jobmojito_positions.yaml says: P1 active, P2 archived, P3 active and embedded.
        assert [sandbox.position(p)["status"] for p in (P1, P2, P3)] == ["active", "archived", "active"]
        assert sandbox.position(P3)["embed_id"] is not None
        calls = [r["json"] for r in sandbox.requests_log() if r["path"].endswith("set-state")]
        assert sorted(c["position_id"] for c in calls) == sorted([P1, P2])  # P3 was active already
        plan = run.get_task_instance("plan").xcom_pull(task_ids="plan")
        assert (len(plan["changes"]), plan["applied"], plan["unchanged"]) == (2, 0, 1)
        assert "| position | name | from | to | why |" in plan["table"]
        if AIRFLOW_V3 and "approve" in dag.task_ids:
            assert dag.task_dict["approve"].upstream_task_ids == {"plan"}
            assert dag.task_dict["apply"].upstream_task_ids == {"approve"}

    def test_a_second_run_writes_nothing(self, sandbox: Any) -> None:
        dag = load_example_dag("jobmojito_positions_as_code", "jobmojito_positions_as_code")
        assert self.run(dag).state == "success"
        sandbox.clear_requests()
        run = self.run(dag)
        assert run.state == "success"
        assert [r for r in sandbox.requests_log() if r["path"].endswith("set-state")] == []
        assert run.get_task_instance("apply").xcom_pull(task_ids="apply")["applied"] == 0


class TestResultsToStorage:
    def test_exports_the_days_results_and_summarises_them_per_position(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        jobmojito_conn()
        monkeypatch.setenv("JOBMOJITO_RESULTS_FOLDER", tmp_path.as_uri())
        day = pendulum.datetime(2026, 1, 1, tz="UTC")
        for position, count in ((P1, 30), (P2, 12)):
            created = jobmojito_sandbox.change_results(
                create=count,
                definition_id=position,
                at=day.add(hours=1).isoformat(),
                spread_seconds=10 * 3600,
            )["created"]
            # Updated twice later that day: processed and scored.
            for _ in range(2):
                jobmojito_sandbox.change_results(
                    ids=created[:10], at=day.add(hours=12).isoformat(), spread_seconds=3600
                )
        # The day before and the day after: not in the day's file.
        jobmojito_sandbox.change_results(create=5, at=day.subtract(hours=2).isoformat())
        jobmojito_sandbox.change_results(create=5, at=day.add(days=1, hours=2).isoformat())
        dag = load_example_dag("jobmojito_results_to_storage", "jobmojito_results_to_storage")
        # A manual run of that date exports the interval ending then: the day.
        run = dag.test(**{"logical_date" if AIRFLOW_V3 else "execution_date": day.add(days=1)})
        assert run.state == "success"
        exported = run.get_task_instance("export_results").xcom_pull(task_ids="export_results")
        assert exported["count"] == 42
        assert exported["path"].startswith(tmp_path.as_uri())
        summary = run.get_task_instance("summarise").xcom_pull(task_ids="summarise")
        assert {position: counts["results"] for position, counts in summary.items()} == {P1: 30, P2: 12}
        assert {position: counts["scored"] for position, counts in summary.items()} == {P1: 10, P2: 10}
        assert all(isinstance(counts["mean_score"], float) for counts in summary.values())
