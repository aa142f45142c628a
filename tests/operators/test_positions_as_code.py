"""ReconcilePositionsOperator and PositionsDriftOperator against the sandbox, over real HTTP."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowFailException, task

from airflow_provider_jobmojito.exceptions import (
    JobMojitoArgumentError,
    JobMojitoBulkError,
    JobMojitoDriftError,
    JobMojitoGuardrailError,
)
from airflow_provider_jobmojito.operators.positions_as_code import (
    PositionsDriftOperator,
    ReconcilePositionsOperator,
)
from tests.conftest import AIRFLOW_V3, dag_bag, logged_lines, run_inline_dag

SET_STATE = "/functions/v1/job-interview-set-state"
LIST = "/functions/v1/merchant-interview-list"
GET = "/functions/v1/job-interview-get"


def pid(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


#: Six positions this DAG owns (names marked "[ats]") and two it does not.
A1, A2, A3, A4, A5, A6 = (pid(n) for n in range(1, 7))
OTHER1, OTHER2 = pid(101), pid(102)
UNKNOWN = pid(999)


@pytest.fixture
def sandbox(jobmojito_sandbox: Any, jobmojito_conn: Any) -> Any:
    jobmojito_sandbox.seed(
        [
            {"id": A1, "name": "[ats] Data Engineer", "status": "draft"},
            {"id": A2, "name": "[ats] Analyst", "status": "active"},
            {"id": A3, "name": "[ats] Designer", "status": "active"},
            {"id": A4, "name": "[ats] Recruiter", "status": "archived"},
            {"id": A5, "name": "[ats] Support", "status": "preparing"},
            {"id": A6, "name": "[ats] Old", "status": "deleted"},
            {"id": OTHER1, "name": "Hand-made", "status": "active"},
            {"id": OTHER2, "name": "Coaching", "status": "active", "type": "coaching"},
        ]
    )
    jobmojito_conn()
    jobmojito_sandbox.clear_requests()
    return jobmojito_sandbox


def calls(sandbox: Any, path: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests_log() if r["path"] == path]


def statuses(sandbox: Any, *ids: str) -> list[str]:
    return [sandbox.position(i)["status"] for i in ids]


def run(operator: ReconcilePositionsOperator) -> dict[str, Any]:
    return operator.execute({})  # type: ignore[arg-type]


def changed(the_plan: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["position_id"]: (c["from"], c["to"], c["why"]) for c in the_plan["changes"]}


class TestPlanAndApply:
    def test_a_dry_run_plans_the_difference_and_writes_nothing(self, sandbox: Any) -> None:
        the_plan = run(
            ReconcilePositionsOperator(
                task_id="plan",
                desired={A1: "active", A2: "active", A3: "archived", UNKNOWN: "active"},
                dry_run=True,
            )
        )
        assert changed(the_plan) == {
            A1: ("draft", "active", "desired"),
            A3: ("active", "archived", "desired"),
        }
        assert the_plan["unchanged"] == 1
        assert [(s["position_id"], s["reason"].split(":")[0]) for s in the_plan["skipped"]] == [
            (UNKNOWN, "not listed")
        ]
        assert (the_plan["applied"], the_plan["listed"], the_plan["managed"]) == (0, 7, 3)
        assert the_plan["scope"] == {"type": "interview"}
        assert json.loads(json.dumps(the_plan)) == the_plan  # an XCom value as it is
        assert calls(sandbox, SET_STATE) == []
        assert statuses(sandbox, A1, A3) == ["draft", "active"]

    def test_the_plan_is_logged_as_a_table(
        self, sandbox: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        run(ReconcilePositionsOperator(task_id="plan", desired={A1: "active"}, dry_run=True))
        lines = "\n".join(logged_lines(capfd, caplog)).splitlines()
        assert any("| position | name | from | to | why |" in line for line in lines)
        assert any(f"| {A1} | [ats] Data Engineer | draft | active | desired |" in line for line in lines)

    def test_applies_only_the_difference_and_a_second_run_writes_nothing(self, sandbox: Any) -> None:
        desired = {A1: "active", A2: "active", A3: "archived", A4: "archived"}
        first = run(ReconcilePositionsOperator(task_id="apply", desired=desired))
        assert first["applied"] == 2
        assert sorted(c["json"]["position_id"] for c in calls(sandbox, SET_STATE)) == [A1, A3]
        assert statuses(sandbox, A1, A2, A3, A4) == ["active", "active", "archived", "archived"]
        sandbox.clear_requests()
        second = run(ReconcilePositionsOperator(task_id="apply", desired=desired))
        assert (second["changes"], second["unchanged"], second["applied"]) == ([], 4, 0)
        assert calls(sandbox, SET_STATE) == []

    def test_a_desired_id_the_list_does_not_show_is_reported_and_never_written(self, sandbox: Any) -> None:
        # OTHER2 exists but is a coaching position: outside the listed type.
        the_plan = run(
            ReconcilePositionsOperator(task_id="apply", desired={UNKNOWN: "active", OTHER2: "archived"})
        )
        assert sorted(s["position_id"] for s in the_plan["skipped"]) == sorted([UNKNOWN, OTHER2])
        assert calls(sandbox, SET_STATE) == []
        assert sandbox.position(OTHER2)["status"] == "active"

    def test_a_position_changed_while_the_listing_pages_is_skipped_as_possibly_changed(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        jobmojito_sandbox.seed([{"id": pid(n), "status": "draft"} for n in range(1, 1201)])
        jobmojito_conn()
        order = jobmojito_sandbox.app.store.query(status=None, type_="interview", filter_text=None)
        moved = order[1100]["id"]  # on the second page, until a change moves it to the first
        jobmojito_sandbox.add_fault(
            "change", path=LIST, query={"offset": 1000}, position_id=moved, position_status="archived"
        )
        the_plan = run(ReconcilePositionsOperator(task_id="apply", desired={moved: "active"}))
        [skipped] = the_plan["skipped"]
        assert skipped["position_id"] == moved
        assert "changed while the listing paged" in skipped["reason"]
        assert calls(jobmojito_sandbox, SET_STATE) == []

    def test_lists_through_the_pager_with_no_per_position_read(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        count = 2_345
        jobmojito_sandbox.seed([{"id": pid(n), "status": "draft"} for n in range(1, count + 1)])
        jobmojito_conn()
        desired = {pid(n): "active" for n in range(1, 11)}
        the_plan = run(ReconcilePositionsOperator(task_id="plan", desired=desired, dry_run=True))
        assert (the_plan["listed"], len(the_plan["changes"])) == (count, 10)
        lists = calls(jobmojito_sandbox, LIST)
        assert len(lists) == math.ceil(count / 1000)
        assert [r["query"]["offset"] for r in lists] == ["0", "1000", "2000"]
        assert calls(jobmojito_sandbox, GET) == []

    def test_is_embedded_is_sent_with_a_status_change_and_only_then(self, sandbox: Any) -> None:
        desired = [
            {"position_id": A1, "status": "active", "is_embedded": True},
            {"position_id": A2, "status": "active", "is_embedded": True},  # already active
        ]
        the_plan = run(ReconcilePositionsOperator(task_id="apply", desired=desired))
        assert [c["json"] for c in calls(sandbox, SET_STATE)] == [
            {"position_id": A1, "status": "active", "is_embedded": True}
        ]
        assert the_plan["changes"][0]["is_embedded"] is True
        assert sandbox.position(A1)["embed_id"] is not None
        assert sandbox.position(A2)["embed_id"] is None


class TestGuardrail:
    @pytest.mark.parametrize("max_changes", [1, 0.25])
    def test_more_changes_than_max_changes_fail_before_any_write(
        self, sandbox: Any, max_changes: Any
    ) -> None:
        # Four managed positions, two changes: over a count of 1 and over a quarter (1 of 4).
        operator = ReconcilePositionsOperator(
            task_id="apply",
            desired={A1: "active", A2: "active", A3: "archived", A4: "archived"},
            max_changes=max_changes,
        )
        with pytest.raises(JobMojitoGuardrailError, match="2 change\\(s\\), more than max_changes allows: 1"):
            run(operator)
        assert calls(sandbox, SET_STATE) == []
        assert len(calls(sandbox, LIST)) == 1

    @pytest.mark.parametrize("max_changes", [2, 0.5])
    def test_changes_within_max_changes_are_applied(self, sandbox: Any, max_changes: Any) -> None:
        operator = ReconcilePositionsOperator(
            task_id="apply",
            desired={A1: "active", A2: "active", A3: "archived", A4: "archived"},
            max_changes=max_changes,
        )
        assert run(operator)["applied"] == 2

    def test_the_guardrail_fails_without_airflow_retries(self) -> None:
        assert issubclass(JobMojitoGuardrailError, AirflowFailException)


class TestUnmanaged:
    def test_ignore_leaves_what_desired_does_not_name(self, sandbox: Any) -> None:
        run(ReconcilePositionsOperator(task_id="apply", desired={A1: "active"}))
        assert statuses(sandbox, A2, A3, OTHER1) == ["active", "active", "active"]

    def test_archive_within_filter_text_archives_only_the_scope(self, sandbox: Any) -> None:
        the_plan = run(
            ReconcilePositionsOperator(
                task_id="apply", desired={A1: "active"}, unmanaged="archive", filter_text="[ats]"
            )
        )
        assert changed(the_plan) == {
            A1: ("draft", "active", "desired"),
            A2: ("active", "archived", "unmanaged: archive"),
            A3: ("active", "archived", "unmanaged: archive"),
        }
        # A5 (preparing) and A6 (deleted) are protected: left as they are, not drift to report.
        assert the_plan["skipped"] == []
        assert statuses(sandbox, A5, A6) == ["preparing", "deleted"]
        assert the_plan["scope"] == {"type": "interview", "filter_text": "[ats]"}
        assert statuses(sandbox, A1, A2, A3, OTHER1) == ["active", "archived", "archived", "active"]
        assert all(r["query"]["filter_text"] == "[ats]" for r in calls(sandbox, LIST))

    def test_archive_within_managed_ids_archives_only_those(self, sandbox: Any) -> None:
        run(
            ReconcilePositionsOperator(
                task_id="apply", desired={A1: "active"}, unmanaged="archive", managed_ids=[A1, A2]
            )
        )
        assert statuses(sandbox, A1, A2, A3, OTHER1) == ["active", "archived", "active", "active"]

    def test_archive_without_a_scope_is_refused_when_the_dag_is_built(self) -> None:
        with pytest.raises(JobMojitoArgumentError, match='unmanaged="archive" needs a scope'):
            ReconcilePositionsOperator(task_id="apply", desired={A1: "active"}, unmanaged="archive")

    def test_archive_with_a_scope_rendered_empty_is_refused_before_any_request(self, sandbox: Any) -> None:
        operator = ReconcilePositionsOperator(
            task_id="apply", desired={A1: "active"}, unmanaged="archive", filter_text="{{ params.f }}"
        )
        operator.filter_text = ""  # as rendered
        with pytest.raises(JobMojitoArgumentError, match="needs a scope"):
            run(operator)
        assert sandbox.requests_log() == []

    def test_an_empty_desired_state_never_archives_the_scope(self, sandbox: Any) -> None:
        with pytest.raises(JobMojitoArgumentError, match="desired is empty"):
            ReconcilePositionsOperator(task_id="apply", desired={}, unmanaged="archive", filter_text="[ats]")
        operator = ReconcilePositionsOperator(
            task_id="apply", desired="{{ ti.xcom_pull('export') }}", unmanaged="archive", filter_text="[ats]"
        )
        operator.desired = "[]"  # an export that came back empty, as rendered
        with pytest.raises(JobMojitoArgumentError, match="desired is empty"):
            run(operator)
        assert sandbox.requests_log() == []


class TestProtectedStatuses:
    def test_a_desired_protected_status_needs_an_opt_in(self) -> None:
        with pytest.raises(
            JobMojitoArgumentError, match="sets deleted, which a reconcile enters only when allow_statuses"
        ):
            ReconcilePositionsOperator(task_id="apply", desired={A1: "deleted"})

    def test_a_live_protected_status_is_not_left_without_an_opt_in(self, sandbox: Any) -> None:
        the_plan = run(ReconcilePositionsOperator(task_id="apply", desired={A5: "active", A6: "active"}))
        reasons = {s["position_id"]: s["reason"] for s in the_plan["skipped"]}
        assert reasons[A5].startswith("would leave preparing")
        assert reasons[A6].startswith("would leave deleted")
        assert calls(sandbox, SET_STATE) == []

    def test_allow_statuses_opts_in(self, sandbox: Any) -> None:
        run(
            ReconcilePositionsOperator(
                task_id="apply",
                desired={A5: "active", A1: "deleted"},
                allow_statuses=["preparing", "deleted"],
            )
        )
        assert statuses(sandbox, A5, A1) == ["active", "deleted"]

    def test_allow_statuses_names_only_protected_statuses(self) -> None:
        with pytest.raises(JobMojitoArgumentError, match="allow_statuses names only protected statuses"):
            ReconcilePositionsOperator(task_id="apply", desired={A1: "active"}, allow_statuses=["active"])


class TestApprovedPlan:
    def test_applies_the_approved_plan_and_reports_a_position_changed_since(self, sandbox: Any) -> None:
        the_plan = run(
            ReconcilePositionsOperator(
                task_id="plan", desired={A1: "active", A2: "archived", A3: "archived"}, dry_run=True
            )
        )
        # Someone closes A2 by hand after the plan, before the apply.
        sandbox.admin_set_status(A2, "completed")
        sandbox.clear_requests()
        applied = run(ReconcilePositionsOperator(task_id="apply", approved_plan=json.dumps(the_plan)))
        assert sorted(c["json"]["position_id"] for c in calls(sandbox, SET_STATE)) == [A1, A3]
        assert statuses(sandbox, A1, A2, A3) == ["active", "completed", "archived"]
        [skipped] = applied["skipped"]
        assert skipped["position_id"] == A2
        assert "changed since the plan" in skipped["reason"]
        assert "status now completed" in skipped["reason"]
        assert applied["applied"] == 2
        # One re-read of the plan's scope, right before writing.
        assert len(calls(sandbox, LIST)) == 1

    def test_a_rerun_after_a_partial_failure_counts_its_own_writes_as_done(self, sandbox: Any) -> None:
        the_plan = run(
            ReconcilePositionsOperator(task_id="plan", desired={A1: "active", A3: "archived"}, dry_run=True)
        )
        # One set-state refused (a permanent error): the other position is written, the task fails.
        sandbox.add_fault("status", status=422, path=SET_STATE, body={"error": "Invalid transition."})
        apply = ReconcilePositionsOperator(task_id="apply", approved_plan=the_plan, max_workers=1)
        with pytest.raises(JobMojitoBulkError, match="1 of 2 positions failed"):
            run(apply)
        targets = {A1: "active", A3: "archived"}
        [written] = [p for p, to in targets.items() if sandbox.position(p)["status"] == to]
        [failed] = {A1, A3} - {written}
        sandbox.clear_requests()
        # The task is retried (or cleared): its own write is done, not a change made behind its back.
        again = run(apply)
        assert [c["json"]["position_id"] for c in calls(sandbox, SET_STATE)] == [failed]
        assert statuses(sandbox, A1, A3) == ["active", "archived"]
        assert (again["applied"], again["unchanged"], again["skipped"]) == (1, 1, [])

    def test_an_approved_plan_is_not_replanned(self, sandbox: Any) -> None:
        the_plan = run(ReconcilePositionsOperator(task_id="plan", desired={A1: "active"}, dry_run=True))
        sandbox.admin_set_status(A3, "draft")  # drift the plan did not see: not the apply's business
        run(ReconcilePositionsOperator(task_id="apply", approved_plan=the_plan))
        assert statuses(sandbox, A1, A3) == ["active", "draft"]

    def test_an_edited_approved_plan_does_not_enter_a_protected_status(self, sandbox: Any) -> None:
        the_plan = run(ReconcilePositionsOperator(task_id="plan", desired={A1: "active"}, dry_run=True))
        the_plan["changes"][0]["to"] = "deleted"  # a plan is data: someone edited it
        applied = run(ReconcilePositionsOperator(task_id="apply", approved_plan=the_plan))
        assert [s["reason"] for s in applied["skipped"]] == [
            "would enter deleted (draft -> deleted); allow_statuses must name deleted"
        ]
        assert calls(sandbox, SET_STATE) == []

    def test_a_malformed_approved_plan_fails_before_any_request(self, sandbox: Any) -> None:
        operator = ReconcilePositionsOperator(task_id="apply", approved_plan="{{ ti.xcom_pull('plan') }}")
        operator.approved_plan = "None"  # the plan task pushed nothing
        with pytest.raises(JobMojitoArgumentError, match="approved_plan must be the plan"):
            run(operator)
        assert sandbox.requests_log() == []


class TestDrift:
    def test_fails_listing_the_differences(self, sandbox: Any) -> None:
        operator = PositionsDriftOperator(
            task_id="drift", desired={A1: "active", A2: "active", UNKNOWN: "draft"}
        )
        with pytest.raises(JobMojitoDriftError, match="2 position\\(s\\) differ from desired") as raised:
            run(operator)
        assert f"{A1} ([ats] Data Engineer): draft -> active" in str(raised.value)
        assert UNKNOWN in str(raised.value)
        assert calls(sandbox, SET_STATE) == []

    def test_no_drift_succeeds(self, sandbox: Any) -> None:
        the_plan = run(PositionsDriftOperator(task_id="drift", desired={A2: "active", A3: "active"}))
        assert (the_plan["changes"], the_plan["unchanged"]) == ([], 2)

    def test_detects_a_change_made_behind_the_providers_back(self, sandbox: Any) -> None:
        desired = {A1: "active", A2: "active"}
        run(ReconcilePositionsOperator(task_id="apply", desired=desired))
        sandbox.admin_set_status(A2, "archived")
        with pytest.raises(JobMojitoDriftError, match=f"{A2} \\(\\[ats\\] Analyst\\): archived -> active"):
            run(PositionsDriftOperator(task_id="drift", desired=desired))

    def test_takes_no_write_arguments(self) -> None:
        with pytest.raises(JobMojitoArgumentError, match="dry_run is not taken"):
            PositionsDriftOperator(task_id="drift", desired={A1: "active"}, dry_run=False)

    def test_event_mode_needs_outlets(self) -> None:
        with pytest.raises(JobMojitoArgumentError, match='on_drift="event" needs outlets'):
            PositionsDriftOperator(task_id="drift", desired={A1: "active"}, on_drift="event")


class TestBadSpecs:
    @pytest.mark.parametrize(
        ("desired", "fragment"),
        [
            ({"pos-1": "active"}, "desired['pos-1'] must be a UUID"),
            ({A1: "actve"}, f"desired['{A1}'] status must be one of draft, active"),
            (
                [{"position_id": A1, "status": "active"}, {"position_id": A1.upper(), "status": "active"}],
                "desired[1]",
            ),
            (
                [{"position_id": A1, "status": "active"}, {"position_id": A1, "status": "archived"}],
                "in conflict with desired[0]",
            ),
            ([{"position_id": A1, "state": "active"}], "desired[0] has unknown key(s) 'state'"),
            (
                [{"position_id": A1, "status": "active", "is_embedded": "yes"}],
                "is_embedded must be True, False or None",
            ),
            ("positions.csv", "the path of a .json, .yaml, .yml file"),
            (42, "desired must be a mapping"),
        ],
    )
    def test_a_literal_bad_spec_fails_when_the_dag_is_built(self, desired: Any, fragment: str) -> None:
        with pytest.raises(JobMojitoArgumentError) as raised:
            ReconcilePositionsOperator(task_id="apply", desired=desired)
        assert fragment in str(raised.value)
        assert "'apply'" in str(raised.value)

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            ({}, "give exactly one of desired"),
            ({"desired": {A1: "active"}, "approved_plan": {"version": 1}}, "got both"),
            (
                {"desired": {A1: "active"}, "max_changes": 1.5},
                "max_changes as a fraction must be from 0 to 1",
            ),
            ({"desired": {A1: "active"}, "max_changes": -1}, "max_changes as a count"),
            ({"desired": {A1: "active"}, "max_changes": "10"}, "max_changes must be a whole number"),
            # Not a templated argument: Jinja there is never rendered, so it is refused at once.
            (
                {"desired": {A1: "active"}, "max_changes": "{{ params.max_changes }}"},
                "max_changes must be a whole number",
            ),
            ({"desired": {A1: "active"}, "unmanaged": "delete"}, "unmanaged must be one of ignore, archive"),
            ({"desired": {A1: "active"}, "position_type": "job"}, "position_type must be one of"),
            ({"desired": {A1: "active"}, "managed_ids": ["x"]}, "managed_ids[0] must be a UUID"),
            ({"desired": {A1: "active"}, "dry_run": "yes"}, "dry_run must be True or False"),
            ({"approved_plan": {"changes": []}}, "approved_plan must be the plan"),
        ],
    )
    def test_bad_arguments_fail_when_the_dag_is_built(self, kwargs: dict[str, Any], fragment: str) -> None:
        with pytest.raises(JobMojitoArgumentError) as raised:
            ReconcilePositionsOperator(task_id="apply", **kwargs)
        assert fragment in str(raised.value)

    def test_a_bad_rendered_spec_fails_before_any_request(self, sandbox: Any) -> None:
        operator = ReconcilePositionsOperator(task_id="apply", desired="{{ ti.xcom_pull('export') }}")
        operator.desired = json.dumps({A1: "actve"})  # as rendered
        with pytest.raises(JobMojitoArgumentError, match="status must be one of"):
            run(operator)
        assert sandbox.requests_log() == []

    def test_building_touches_neither_connection_nor_network(self, jobmojito_sandbox: Any) -> None:
        ReconcilePositionsOperator(task_id="apply", desired={A1: "active"})
        assert jobmojito_sandbox.requests_log() == []


DAG_FILE = """
import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_jobmojito.operators.positions_as_code import ReconcilePositionsOperator

with DAG("spec_file", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ReconcilePositionsOperator(task_id="apply", desired="{spec}")
"""


@pytest.mark.usefixtures("airflow_db")
class TestInDagRuns:
    @pytest.mark.parametrize(
        ("name", "text"),
        [
            ("spec/positions.yaml", f"positions:\n  - position_id: {A1}\n    status: active\n"),
            ("spec/positions.json", json.dumps({A1: "active"})),
        ],
    )
    def test_a_spec_file_is_read_relative_to_the_dag_file(
        self, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str
    ) -> None:
        (tmp_path / "spec").mkdir()
        (tmp_path / name).write_text(text)
        (tmp_path / "dag.py").write_text(textwrap.dedent(DAG_FILE.format(spec=name)))
        monkeypatch.chdir("/")  # not the DAG's folder: the path must not depend on the working directory
        bag = dag_bag(tmp_path)
        assert bag.import_errors == {}
        run_ = run_inline_dag(bag.dags["spec_file"])
        assert run_.state == "success"
        assert sandbox.position(A1)["status"] == "active"

    def test_desired_from_an_upstream_task_and_a_jinja_xcom_pull(self, sandbox: Any) -> None:
        with DAG("from_xcom", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

            @task
            def export() -> list[dict[str, str]]:
                return [{"position_id": A1, "status": "active"}]

            exported = export()
            plan = ReconcilePositionsOperator(task_id="plan", desired=exported, dry_run=True)
            # Jinja renders the XCom to text (a Python repr): read back as the records it was.
            apply = ReconcilePositionsOperator(
                task_id="apply", desired="{{ ti.xcom_pull(task_ids='export') }}"
            )
            plan >> apply
        run_ = run_inline_dag(dag)
        assert run_.state == "success"
        pushed = run_.get_task_instance("plan").xcom_pull(task_ids="plan")
        assert [c["position_id"] for c in pushed["changes"]] == [A1]
        assert sandbox.position(A1)["status"] == "active"
        assert len(calls(sandbox, SET_STATE)) == 1

    def test_a_desired_mapping_with_templated_statuses_is_rendered_not_refused(self, sandbox: Any) -> None:
        with DAG(
            "templated_values",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            params={"status": "active"},
        ) as dag:
            # Airflow renders the values of a templated mapping: not literal, not checked at parse.
            ReconcilePositionsOperator(task_id="apply", desired={A1: "{{ params.status }}"})
        run_ = run_inline_dag(dag)
        assert run_.state == "success"
        assert sandbox.position(A1)["status"] == "active"

    def test_plan_then_apply_the_plan_from_xcom(self, sandbox: Any) -> None:
        with DAG("plan_apply", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            plan = ReconcilePositionsOperator(
                task_id="plan", desired={A1: "active", A3: "archived"}, dry_run=True
            )
            apply = ReconcilePositionsOperator(
                task_id="apply", approved_plan="{{ ti.xcom_pull(task_ids='plan') | tojson }}"
            )
            plan >> apply
        run_ = run_inline_dag(dag)
        assert run_.state == "success"
        assert statuses(sandbox, A1, A3) == ["active", "archived"]
        assert run_.get_task_instance("apply").xcom_pull(task_ids="apply")["applied"] == 2

    def test_drift_fails_the_task_in_a_dag_run_without_retries(self, sandbox: Any) -> None:
        with DAG("drift", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            PositionsDriftOperator(task_id="drift", desired={A1: "active"}, retries=3)
        run_ = run_inline_dag(dag)
        ti = run_.get_task_instance("drift")
        assert (run_.state, ti.state, ti.try_number) == ("failed", "failed", 1)

    def test_drift_as_an_asset_event_carries_the_differences(self, sandbox: Any) -> None:
        from airflow.providers.common.compat.sdk import Asset
        from airflow.utils.session import create_session

        if AIRFLOW_V3:
            from airflow.models.asset import AssetEvent as Event
        else:  # Airflow 2 calls assets datasets
            from airflow.models.dataset import DatasetEvent as Event

        drifted = Asset("jobmojito://positions/drift")
        with DAG("drift_event", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            PositionsDriftOperator(
                task_id="drift", desired={A1: "active", A2: "active"}, on_drift="event", outlets=[drifted]
            )
        if not AIRFLOW_V3:  # Airflow 2 records events only on datasets its database knows
            dag.sync_to_db()
        run_ = run_inline_dag(dag)
        assert run_.state == "success"
        with create_session() as session:
            events = session.query(Event).filter(Event.source_run_id == run_.run_id).all()
            assert [e.extra["drift"] for e in events] == [
                [f"{A1} ([ats] Data Engineer): draft -> active (desired)"]
            ]

    def test_no_drift_skips_the_event_task(self, sandbox: Any) -> None:
        from airflow.providers.common.compat.sdk import Asset

        with DAG("no_drift_event", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            PositionsDriftOperator(
                task_id="drift",
                desired={A2: "active"},
                on_drift="event",
                outlets=[Asset("jobmojito://positions/drift")],
            )
        run_ = run_inline_dag(dag)
        assert run_.get_task_instance("drift").state == "skipped"
