"""SetInterviewStateOperator and EmbedOperator: validation, XCom, templating, mapping, failures."""

from __future__ import annotations

import re
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowFailException, task

from airflow_provider_jobmojito.exceptions import (
    JobMojitoArgumentError,
    JobMojitoBulkError,
    JobMojitoUnavailableError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.operators.jobmojito import EmbedOperator, SetInterviewStateOperator
from tests.conftest import AIRFLOW_V3, dag_bag, logged_lines, run_inline_dag
from tests.timing import alarm_once

P1 = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"
P2 = "9b1d3c52-7e0a-4f7b-8c55-2a1e6d4b0f10"
P3 = "5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d"
SET_STATE = "/functions/v1/job-interview-set-state"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any, jobmojito_conn: Any) -> Any:
    jobmojito_sandbox.seed([{"id": p, "status": "draft"} for p in (P1, P2, P3)])
    jobmojito_conn()
    return jobmojito_sandbox


def set_state_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests_log() if r["path"] == SET_STATE]


class TestConstruction:
    @pytest.mark.parametrize(
        ("kwargs", "fragments"),
        [
            ({"position_id": P1, "status": "actve"}, ["status must be one of", "draft, active, archived"]),
            ({"position_id": "pos-1", "status": "active"}, ["position_id must be a UUID"]),
            ({"position_id": P1, "is_embedded": "yes"}, ["is_embedded must be True, False or None"]),
            ({"position_id": P1}, ["Give status", "or is_embedded"]),
            ({"position_id": P1, "status": "active", "push_signing_key": "no"}, ["push_signing_key"]),
        ],
    )
    def test_literal_arguments_are_checked_when_built(
        self, kwargs: dict[str, Any], fragments: list[str]
    ) -> None:
        with pytest.raises(ValueError, match=fragments[0]) as raised:
            SetInterviewStateOperator(task_id="t", **kwargs)
        for fragment in fragments:
            assert fragment in str(raised.value)

    def test_templated_and_upstream_arguments_wait_for_the_run(self) -> None:
        with DAG("construction", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):

            @task
            def upstream() -> str:
                return P1

            t1 = SetInterviewStateOperator(
                task_id="t1", position_id="{{ params.p }}", status="{{ params.s }}"
            )
            t2 = SetInterviewStateOperator(task_id="t2", position_id=upstream(), is_embedded="{{ params.e }}")
        assert (t1.position_id, t1.status) == ("{{ params.p }}", "{{ params.s }}")
        assert t2.is_embedded == "{{ params.e }}"

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            ({"status": "actve"}, "status must be one of"),
            ({"status": "active", "is_embedded": "yes"}, "is_embedded must be True, False or None"),
            ({"status": "active", "max_workers": 0}, "max_workers must be a whole number"),
        ],
    )
    def test_literal_arguments_given_to_partial_fail_at_parse_time(
        self, kwargs: dict[str, Any], fragment: str
    ) -> None:
        with pytest.raises(ValueError, match=fragment):
            SetInterviewStateOperator.partial(task_id="mapped", **kwargs)

    def test_building_touches_neither_connection_nor_network(self, jobmojito_sandbox: Any) -> None:
        EmbedOperator(task_id="t", position_id=P1, jobmojito_conn_id="no_such_connection")
        assert jobmojito_sandbox.requests_log() == []

    def test_the_map_index_label_names_the_position_or_how_many(self) -> None:
        with dag_for("labels"):

            @task
            def upstream() -> list[str]:
                return [P1]

            one = SetInterviewStateOperator(task_id="one", position_id=P1, status="active")
            many = SetInterviewStateOperator(task_id="many", position_ids=[P1, P2], status="active")
            # Airflow 3.0 renders the label of unmapped tasks too, before their ids are resolved.
            later = SetInterviewStateOperator(task_id="later", position_ids=upstream(), status="active")
        assert [one.position_label, many.position_label, later.position_label] == [P1, "2 positions", ""]

    def test_template_fields(self) -> None:
        assert set(SetInterviewStateOperator.template_fields) == {
            "position_id",
            "position_ids",
            "status",
            "is_embedded",
            "jobmojito_conn_id",
        }
        # EmbedOperator takes the same arguments, so it renders the same ones.
        assert EmbedOperator.template_fields == SetInterviewStateOperator.template_fields

    def test_a_dag_file_with_a_misspelt_status_fails_to_import(self, tmp_path: Path) -> None:
        (tmp_path / "typo_dag.py").write_text(
            textwrap.dedent(
                f"""
                import pendulum
                from airflow.providers.common.compat.sdk import DAG
                from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator

                with DAG("typo", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
                    SetInterviewStateOperator(task_id="archive", position_id="{P1}", status="actve")
                """
            )
        )
        bag = dag_bag(tmp_path)
        (error,) = bag.import_errors.values()
        assert "status must be one of draft, active, archived, deleted, preparing, completed" in error
        assert "'actve'" in error


class TestHookParams:
    def test_hook_params_set_this_tasks_timeout_and_retries_over_the_connection(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        jobmojito_sandbox.seed([{"id": P1, "status": "draft"}])
        jobmojito_sandbox.add_fault("status", status=503, count=5)
        jobmojito_conn()
        operator = SetInterviewStateOperator(
            task_id="t", position_id=P1, status="active", hook_params={"max_retries": 1, "timeout": 2}
        )
        with pytest.raises(JobMojitoUnavailableError, match="gave up after 2 attempt"):
            operator.execute(context={"ti": mock.Mock()})
        assert operator.hook.settings.timeout == 2.0
        assert operator.hook is operator.hook  # one hook per task

    @pytest.mark.parametrize(
        ("hook_params", "message"),
        [
            ({"retries": 1}, "hook_params has an unknown argument 'retries'; known: timeout, max_retries"),
            ({"timeout": -1}, "hook_params['timeout'] must be a number of seconds"),
            ([("timeout", 1)], "hook_params must be a dict"),
        ],
    )
    def test_bad_hook_params_fail_when_the_dag_is_built(self, hook_params: Any, message: str) -> None:
        with pytest.raises(JobMojitoArgumentError, match=re.escape(message)):
            SetInterviewStateOperator(task_id="t", position_id=P1, status="active", hook_params=hook_params)


class TestExecute:
    def execute(self, operator: SetInterviewStateOperator) -> tuple[Any, mock.MagicMock]:
        ti = mock.MagicMock()
        return operator.execute(context={"ti": ti}), ti  # type: ignore[arg-type]

    @staticmethod
    def pushed(ti: mock.MagicMock) -> dict[str, Any]:
        return {c.kwargs["key"]: c.kwargs["value"] for c in ti.xcom_push.call_args_list}

    def test_embedding_pushes_the_keys_and_returns_no_secret(self, sandbox: Any) -> None:
        result, ti = self.execute(EmbedOperator(task_id="t", position_id=P1))
        stored = sandbox.position(P1)
        embed_url = f"https://try.interviewmojito.com/embed?embed_id={stored['embed_id']}"
        assert self.pushed(ti) == {
            "embed_id": stored["embed_id"],
            "embed_signing_key": stored["embed_signing_key"],
            "embed_url": embed_url,
        }
        assert result == {
            "position_id": P1,
            "is_embedded": True,
            "embed_id": stored["embed_id"],
            "embed_url": embed_url,
        }
        assert stored["embed_signing_key"] not in repr(result)

    def test_push_signing_key_false_keeps_the_key_out_of_xcom(self, sandbox: Any) -> None:
        _, ti = self.execute(EmbedOperator(task_id="t", position_id=P1, push_signing_key=False))
        assert set(self.pushed(ti)) == {"embed_id", "embed_url"}

    def test_do_xcom_push_false_pushes_nothing_at_all(self, sandbox: Any) -> None:
        result, ti = self.execute(EmbedOperator(task_id="t", position_id=P1, do_xcom_push=False))
        assert ti.xcom_push.call_args_list == []
        assert result["embed_id"] == sandbox.position(P1)["embed_id"]  # returned, which Airflow drops

    def test_switching_embedding_off_pushes_nothing_stale(self, sandbox: Any) -> None:
        self.execute(EmbedOperator(task_id="on", position_id=P1))
        result, ti = self.execute(EmbedOperator(task_id="off", position_id=P1, is_embedded=False))
        assert self.pushed(ti) == {}
        assert result == {"position_id": P1, "is_embedded": False}
        assert sandbox.position(P1)["embed_id"] is None

    def test_set_state_with_embedding_pushes_the_keys_too(self, sandbox: Any) -> None:
        result, ti = self.execute(
            SetInterviewStateOperator(task_id="t", position_id=P1, status="active", is_embedded=True)
        )
        assert set(self.pushed(ti)) == {"embed_id", "embed_signing_key", "embed_url"}
        assert result["status"] == "active"
        assert sandbox.position(P1)["status"] == "active"

    def test_status_only_returns_what_changed(self, sandbox: Any) -> None:
        result, ti = self.execute(SetInterviewStateOperator(task_id="t", position_id=P1, status="archived"))
        assert result == {"position_id": P1, "status": "archived"}
        assert self.pushed(ti) == {}

    def test_bad_rendered_values_fail_without_retry_or_request(self, sandbox: Any) -> None:
        operator = SetInterviewStateOperator(task_id="t", position_id=P1, status="{{ params.s }}")
        operator.status = "actve"  # as rendered
        with pytest.raises(AirflowFailException, match="status must be one of") as raised:
            self.execute(operator)
        assert "'t'" in str(raised.value)
        assert sandbox.requests_log() == []

    def test_rendered_true_and_false_strings_are_bools(self, sandbox: Any) -> None:
        operator = EmbedOperator(task_id="t", position_id=P1, is_embedded="{{ params.e }}")
        operator.is_embedded = "False"  # as rendered by Jinja
        self.execute(operator)
        assert set_state_calls(sandbox)[0]["json"] == {"position_id": P1, "is_embedded": False}

    def test_logs_what_changed_and_how_long_it_took(
        self, sandbox: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        self.execute(
            SetInterviewStateOperator(task_id="t", position_id=P1, status="archived", is_embedded=False)
        )
        out = "\n".join(logged_lines(capfd, caplog))
        assert f"position {P1} -> archived, embedding off (" in out
        assert " ms)" in out

    def test_permanent_api_errors_fail_fast(self, sandbox: Any) -> None:
        sandbox.add_fault("status", status=422, body={"error": "Invalid transition.", "name": "status"})
        with pytest.raises(JobMojitoValidationError) as raised:
            self.execute(SetInterviewStateOperator(task_id="t", position_id=P1, status="deleted"))
        assert isinstance(raised.value, AirflowFailException)


def dag_for(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), **kwargs)


@pytest.mark.usefixtures("airflow_db")
class TestInDagRuns:
    def test_every_templated_field_is_rendered(self, sandbox: Any, jobmojito_conn: Any) -> None:
        jobmojito_conn("jobmojito_other")
        with dag_for(
            "templated",
            params={"position": P1.upper(), "status": "active", "embed": True, "conn": "jobmojito_other"},
        ) as dag:
            SetInterviewStateOperator(
                task_id="t",
                position_id="{{ params.position }}",
                status="{{ params.status }}",
                is_embedded="{{ params.embed }}",
                jobmojito_conn_id="{{ params.conn }}",
            )
        run = run_inline_dag(dag)
        assert run.state == "success"
        assert sandbox.position(P1)["status"] == "active"
        assert sandbox.position(P1)["embed_id"] is not None

    def test_bad_rendered_status_fails_the_task_without_retries(self, sandbox: Any) -> None:
        with dag_for("bad_render", params={"status": "actve"}) as dag:
            SetInterviewStateOperator(task_id="t", position_id=P1, status="{{ params.status }}", retries=3)
        run = run_inline_dag(dag)
        ti = run.get_task_instance("t")
        assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
        assert sandbox.requests_log() == []

    def test_mapping_over_a_list_labels_each_instance_with_its_position(self, sandbox: Any) -> None:
        with dag_for("mapped_list") as dag:
            SetInterviewStateOperator.partial(task_id="activate", status="active").expand(
                position_id=[P1, P2]
            )
        run = run_inline_dag(dag)
        assert run.state == "success"
        labels = sorted(ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "activate")
        assert labels == sorted([P1, P2])
        assert sandbox.position(P1)["status"] == sandbox.position(P2)["status"] == "active"

    def test_mapping_over_an_upstream_output(self, sandbox: Any) -> None:
        with dag_for("mapped_upstream") as dag:

            @task
            def closed() -> list[str]:
                return [P2, P3]

            SetInterviewStateOperator.partial(task_id="archive", status="archived").expand(
                position_id=closed()
            )
        assert run_inline_dag(dag).state == "success"
        assert [sandbox.position(p)["status"] for p in (P1, P2, P3)] == ["draft", "archived", "archived"]

    def test_mapping_with_expand_kwargs_and_embed_xcom_per_instance(self, sandbox: Any) -> None:
        with dag_for("mapped_kwargs") as dag:
            EmbedOperator.partial(task_id="embed").expand_kwargs(
                [
                    {"position_id": P1},
                    {"position_id": P2, "push_signing_key": False},
                    {"position_id": P3, "is_embedded": False},
                ]
            )
        run = run_inline_dag(dag)
        assert run.state == "success"
        ti = run.get_task_instance("embed", map_index=0)

        def pushed(key: str) -> list[Any]:
            # One map index at a time: Airflow 3.1.8's TaskInstance.xcom_pull fails on a pull across
            # map indexes ('Select' object has no attribute 'with_entities').
            return [ti.xcom_pull(task_ids="embed", key=key, map_indexes=index) for index in range(3)]

        embed_ids = [sandbox.position(P1)["embed_id"], sandbox.position(P2)["embed_id"], None]
        assert pushed("embed_id") == embed_ids
        assert pushed("embed_signing_key") == [sandbox.position(P1)["embed_signing_key"], None, None]
        assert sandbox.position(P3)["embed_id"] is None

    def test_a_bad_id_handed_to_a_mapped_instance_fails_it_without_retries(self, sandbox: Any) -> None:
        with dag_for("mapped_bad_id") as dag:
            SetInterviewStateOperator.partial(task_id="activate", status="active", retries=3).expand(
                position_id=["3f2a6c1e", P1]
            )
        run = run_inline_dag(dag)
        bad, good = sorted(
            (ti for ti in run.get_task_instances() if ti.task_id == "activate"), key=lambda ti: ti.map_index
        )
        assert (bad.state, bad.try_number) == ("failed", 1)
        assert good.state == "success"
        assert [r["json"]["position_id"] for r in set_state_calls(sandbox)] == [P1]

    def test_true_and_false_strings_from_an_upstream_task_are_bools(self, sandbox: Any) -> None:
        with dag_for("mapped_flags") as dag:

            @task
            def flags() -> list[str]:
                return ["true", "false"]

            EmbedOperator.partial(task_id="embed", position_id=P1).expand(is_embedded=flags())
        assert run_inline_dag(dag).state == "success"
        assert [r["json"]["is_embedded"] for r in set_state_calls(sandbox)] in ([True, False], [False, True])

    def test_mapping_over_position_ids_labels_each_instance_with_its_size(self, sandbox: Any) -> None:
        with dag_for("mapped_bulk") as dag:
            SetInterviewStateOperator.partial(task_id="archive", status="archived").expand(
                position_ids=[[P1, P2], [P3]]
            )
        run = run_inline_dag(dag)
        assert run.state == "success"
        labels = sorted(ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "archive")
        assert labels == ["1 positions", "2 positions"]
        assert {sandbox.position(p)["status"] for p in (P1, P2, P3)} == {"archived"}

    def test_a_templated_none_leaves_that_setting_as_it_is(self, sandbox: Any) -> None:
        with dag_for("templated_none", params={"status": None, "embed": True}) as dag:
            SetInterviewStateOperator(
                task_id="t", position_id=P1, status="{{ params.status }}", is_embedded="{{ params.embed }}"
            )
        assert run_inline_dag(dag).state == "success"
        assert [r["json"] for r in set_state_calls(sandbox)] == [{"position_id": P1, "is_embedded": True}]
        assert sandbox.position(P1)["status"] == "draft"

    def test_embed_operator_renders_the_arguments_it_takes_from_its_parent(self, sandbox: Any) -> None:
        with dag_for("embed_templated_status", params={"status": "active"}) as dag:
            EmbedOperator(task_id="t", position_id=P1, status="{{ params.status }}")
        assert run_inline_dag(dag).state == "success"
        assert sandbox.position(P1)["status"] == "active"
        assert sandbox.position(P1)["embed_id"] is not None

    def test_a_bulk_task_stops_sending_at_its_execution_timeout(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        from datetime import timedelta

        # The timeout falls at a known point instead of racing slow answers against a short one:
        # two changes are made, then each of the two workers meets a 503 whose Retry-After parks it
        # (a retry wait ends early when the batch stops). Once the sandbox has logged those four
        # calls, the SIGALRM that Airflow's execution_timeout timer sends is sent to the task's
        # thread. Without the stop, the workers would send the rest after their wait.
        retry_after = 60  # an upper bound on the signal being handled, not a race
        jobmojito_conn(extra={"backoff_max": retry_after, "max_retries": 1, "timeout": 5})
        ids = [str(uuid.uuid4()) for _ in range(30)]
        jobmojito_sandbox.seed([{"id": p, "status": "draft"} for p in ids])
        jobmojito_sandbox.add_fault("delay", seconds=0, count=2, path=SET_STATE)  # answered normally
        jobmojito_sandbox.add_fault("status", status=503, retry_after=retry_after, count=30, path=SET_STATE)
        with dag_for("bulk_timeout") as dag:
            SetInterviewStateOperator(
                task_id="archive",
                position_ids=ids,
                status="archived",
                max_workers=2,
                execution_timeout=timedelta(minutes=5),  # ends the test if the four calls never come
            )
        with alarm_once(lambda: len(set_state_calls(jobmojito_sandbox)) >= 4):
            if AIRFLOW_V3:
                run = run_inline_dag(dag)
                assert (run.state, run.get_task_instance("archive").state) == ("failed", "failed")
            else:  # Airflow 2's dag.test() raises the task's timeout instead of returning the run
                from airflow.exceptions import AirflowTaskTimeout

                with pytest.raises(AirflowTaskTimeout):
                    run_inline_dag(dag)
        assert sorted(r["status"] for r in set_state_calls(jobmojito_sandbox)) == [200, 200, 503, 503]
        archived = [p for p in ids if jobmojito_sandbox.position(p)["status"] == "archived"]
        assert len(archived) == 2

    def test_an_unknown_position_fails_the_run_with_the_server_error(self, sandbox: Any) -> None:
        unknown = str(uuid.uuid4())
        with dag_for("unknown_position") as dag:
            SetInterviewStateOperator(task_id="t", position_id=unknown, status="active")
        run = run_inline_dag(dag)
        assert (run.state, run.get_task_instance("t").state) == ("failed", "failed")
        assert [r["status"] for r in set_state_calls(sandbox)] == [500]

    def test_a_validation_error_from_the_api_is_not_retried(self, sandbox: Any) -> None:
        sandbox.add_fault(
            "status", status=422, count=5, body={"error": "Invalid transition.", "name": "status"}
        )
        with dag_for("api_validation") as dag:
            SetInterviewStateOperator(task_id="t", position_id=P1, status="deleted", retries=3)
        run = run_inline_dag(dag)
        ti = run.get_task_instance("t")
        assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
        assert len(set_state_calls(sandbox)) == 1


class TestBulk:
    """``position_ids``: many positions in one task, through the hook's bulk call."""

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            ({"position_id": P1, "position_ids": [P2]}, "exactly one of position_id"),
            ({}, "exactly one of position_id"),
            ({"position_ids": [P1, "nope"]}, "position_ids[1] must be a UUID"),
            ({"position_ids": P1}, "position_ids must be a list of UUIDs, not one string"),
            ({"position_ids": [P1], "max_workers": 0}, "max_workers must be a whole number of at least 1"),
        ],
    )
    def test_bad_literal_arguments_fail_when_built(self, kwargs: dict[str, Any], fragment: str) -> None:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            SetInterviewStateOperator(task_id="t", status="archived", **kwargs)

    def execute(self, operator: SetInterviewStateOperator) -> tuple[Any, mock.MagicMock]:
        ti = mock.MagicMock()
        return operator.execute(context={"ti": ti}), ti  # type: ignore[arg-type]

    def test_changes_every_position_and_returns_results_in_order(self, sandbox: Any) -> None:
        ids = [P3, P1, P2]
        result, ti = self.execute(
            SetInterviewStateOperator(task_id="t", position_ids=ids, status="archived", max_workers=3)
        )
        assert result == [{"position_id": p, "ok": True} for p in ids]
        assert TestExecute.pushed(ti) == {"results": result}
        assert [sandbox.position(p)["status"] for p in ids] == ["archived"] * 3

    def test_embed_keys_go_to_xcom_by_position_and_never_into_the_return_value(self, sandbox: Any) -> None:
        result, ti = self.execute(
            SetInterviewStateOperator(task_id="t", position_ids=[P1, P2], is_embedded=True)
        )
        pushed = TestExecute.pushed(ti)
        stored = {p: sandbox.position(p) for p in (P1, P2)}
        assert pushed["embed_ids"] == {p: stored[p]["embed_id"] for p in (P1, P2)}
        assert pushed["embed_signing_keys"] == {p: stored[p]["embed_signing_key"] for p in (P1, P2)}
        assert pushed["embed_urls"][P1].endswith(f"?embed_id={stored[P1]['embed_id']}")
        for key in (stored[P1]["embed_signing_key"], stored[P2]["embed_signing_key"]):
            assert key not in repr(result)
            assert key not in repr(pushed["results"])

    def test_push_signing_key_false_keeps_every_key_out_of_xcom(self, sandbox: Any) -> None:
        _, ti = self.execute(
            SetInterviewStateOperator(
                task_id="t", position_ids=[P1, P2], is_embedded=True, push_signing_key=False
            )
        )
        assert set(TestExecute.pushed(ti)) == {"embed_ids", "embed_urls", "results"}

    def test_partial_failure_pushes_every_result_then_raises(self, sandbox: Any) -> None:
        unknown = str(uuid.uuid4())
        ti = mock.MagicMock()
        operator = SetInterviewStateOperator(task_id="t", position_ids=[P1, unknown, P2], status="active")
        with pytest.raises(JobMojitoBulkError, match=f"1 of 3 positions failed: {unknown}") as raised:
            operator.execute(context={"ti": ti})  # type: ignore[arg-type]
        assert not isinstance(raised.value, AirflowFailException)  # a 500: Airflow may retry
        first, failed, last = TestExecute.pushed(ti)["results"]
        assert first == {"position_id": P1, "ok": True}
        assert last == {"position_id": P2, "ok": True}
        assert (failed["position_id"], failed["ok"]) == (unknown, False)
        assert "500" in failed["error"]
        assert [sandbox.position(p)["status"] for p in (P1, P2)] == ["active", "active"]

    def test_on_kill_stops_sending_and_the_results_name_what_was_not_sent(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow_provider_jobmojito.client import JobMojitoClient

        ids = [str(uuid.uuid4()) for _ in range(40)]
        jobmojito_sandbox.seed([{"id": p, "status": "draft"} for p in ids])
        jobmojito_conn()
        operator = SetInterviewStateOperator(task_id="t", position_ids=ids, status="archived", max_workers=2)
        original, changed, lock = JobMojitoClient.run, [], threading.Lock()

        def run(client: JobMojitoClient, plan: Any, **kwargs: Any) -> Any:
            result = original(client, plan, **kwargs)
            if isinstance(result, dict):  # a set-state answer (getting the token returns a string)
                with lock:
                    changed.append(result)
                    if len(changed) == 3:
                        operator.on_kill()  # as Airflow calls it on SIGTERM, while the task runs
            return result

        monkeypatch.setattr(JobMojitoClient, "run", run)
        ti = mock.MagicMock()
        with pytest.raises(JobMojitoBulkError):
            operator.execute(context={"ti": ti})  # type: ignore[arg-type]
        results = TestExecute.pushed(ti)["results"]
        sent = len(set_state_calls(jobmojito_sandbox))
        assert 3 <= sent <= 3 + 1
        assert sum(result["ok"] for result in results) == sent
        assert sum("Not sent" in result.get("error", "") for result in results) == 40 - sent

    def test_do_xcom_push_false_pushes_nothing_at_all(self, sandbox: Any) -> None:
        _, ti = self.execute(
            SetInterviewStateOperator(
                task_id="t", position_ids=[P1, P2], is_embedded=True, do_xcom_push=False
            )
        )
        assert ti.xcom_push.call_args_list == []
        assert sandbox.position(P1)["embed_id"] is not None

    def test_ids_rendered_to_one_string_say_how_to_pass_a_list(self, sandbox: Any) -> None:
        operator = SetInterviewStateOperator(task_id="t", position_ids="{{ params.ids }}", status="active")
        operator.position_ids = str([P1, P2])  # as Jinja renders a list without native rendering
        with pytest.raises(AirflowFailException, match="render_template_as_native_obj=True"):
            self.execute(operator)
        assert sandbox.requests_log() == []

    def test_bad_rendered_ids_fail_without_retry_or_request(self, sandbox: Any) -> None:
        operator = SetInterviewStateOperator(task_id="t", position_ids="{{ params.ids }}", status="active")
        operator.position_ids = [P1, P1]  # as rendered
        with pytest.raises(AirflowFailException, match="more than once"):
            self.execute(operator)
        assert sandbox.requests_log() == []

    def test_embed_operator_embeds_many_positions_given_as_position_ids(self, sandbox: Any) -> None:
        result, ti = self.execute(EmbedOperator(task_id="t", position_ids=[P1, P2]))
        stored = {p: sandbox.position(p) for p in (P1, P2)}
        assert [entry["position_id"] for entry in result] == [P1, P2]
        assert all(entry["ok"] for entry in result)
        pushed = TestExecute.pushed(ti)
        assert pushed["embed_ids"] == {p: stored[p]["embed_id"] for p in (P1, P2)}
        assert pushed["embed_signing_keys"] == {p: stored[p]["embed_signing_key"] for p in (P1, P2)}
        assert set(pushed["embed_urls"]) == {P1, P2}

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            ({"position_id": P1, "position_ids": [P2]}, "got both"),
            ({}, "got neither"),
            ({"position_ids": [P1, "nope"]}, "position_ids[1] must be a UUID"),
            ({"position_ids": P1}, "position_ids must be a list of UUIDs, not one string"),
        ],
        ids=["both", "neither", "bad-id", "one-string"],
    )
    def test_embed_operator_takes_exactly_one_of_position_id_and_position_ids(
        self, kwargs: dict[str, Any], fragment: str
    ) -> None:
        with pytest.raises(JobMojitoArgumentError, match=re.escape(fragment)):
            EmbedOperator(task_id="t", **kwargs)

    def test_embed_operator_maps_over_lists_of_position_ids(self, sandbox: Any) -> None:
        with DAG(
            "embed_bulk_mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")
        ) as dag:
            EmbedOperator.partial(task_id="embed").expand(position_ids=[[P1, P2], [P3]])
        run = run_inline_dag(dag)
        assert run.state == "success"
        assert all(sandbox.position(p)["embed_id"] for p in (P1, P2, P3))

    def test_logs_each_change_and_a_summary(
        self, sandbox: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        self.execute(SetInterviewStateOperator(task_id="t", position_ids=[P1, P2], status="completed"))
        text = "\n".join(logged_lines(capfd, caplog))
        assert f"position {P1} -> completed" in text
        assert f"position {P2} -> completed" in text
        assert "Setting 2 position(s) -> completed" in text
        assert "Changed 2 position(s)" in text
