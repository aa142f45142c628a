"""InterviewStateSensor against the sandbox: construction checks, pokes, and real DAG runs in poke,
reschedule and deferrable modes while the position's status changes as a recruiter would change it."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskGroup,
)

from airflow_provider_jobmojito.exceptions import (
    JobMojitoArgumentError,
    JobMojitoError,
    JobMojitoNotFoundError,
    JobMojitoWaitError,
)
from airflow_provider_jobmojito.sensors.jobmojito import SAFE_RESCHEDULE_INTERVAL, InterviewStateSensor
from tests.conftest import AIRFLOW_VERSION, logged_lines, run_inline_dag

AIRFLOW_3_0 = (AIRFLOW_VERSION.major, AIRFLOW_VERSION.minor) == (3, 0)

GET = "/functions/v1/job-interview-get"
LIST = "/functions/v1/merchant-interview-list"


@pytest.fixture
def position(jobmojito_sandbox: Any, jobmojito_conn: Any) -> str:
    position_id = str(uuid.uuid4())
    jobmojito_sandbox.seed([{"id": position_id, "status": "active"}])
    jobmojito_conn()
    return position_id


def reads(sandbox: Any) -> int:
    return sum(1 for r in sandbox.requests_log() if r["path"] in (GET, LIST))


@pytest.fixture
def recruiter(jobmojito_sandbox: Any) -> Iterator[Any]:
    """Changes a position's status in JobMojito's admin once the sensor has read it ``after`` times."""
    threads: list[threading.Thread] = []
    done = threading.Event()

    def change_after(position_id: str, status: str, after: int = 2) -> None:
        def watch() -> None:
            while not done.wait(0.05):
                if reads(jobmojito_sandbox) >= after:
                    jobmojito_sandbox.admin_set_status(position_id, status)
                    return

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        threads.append(thread)

    yield change_after
    done.set()
    for thread in threads:
        thread.join()


def dag_for(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))


class TestConstruction:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"position_id": "nope"}, "position_id must be a UUID"),
            ({"status": "done"}, "status must be one of draft, active"),
            ({"status": []}, "status must name at least one status"),
            ({"failure_status": ["archived", "closed"]}, "failure_status must be one of"),
            ({"status": "completed", "failure_status": ["completed"]}, "share ['completed']"),
        ],
    )
    def test_literal_arguments_that_can_never_work_fail_the_dag_import(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        arguments = {"task_id": "wait", "position_id": str(uuid.uuid4()), **kwargs}
        with pytest.raises(JobMojitoArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
            InterviewStateSensor(**arguments)

    def test_templates_are_checked_when_rendered_and_nothing_is_read_at_construction(
        self, jobmojito_sandbox: Any
    ) -> None:
        sensor = InterviewStateSensor(task_id="wait", position_id="{{ params.id }}", status="{{ params.s }}")
        assert sensor.status == "{{ params.s }}"
        assert jobmojito_sandbox.requests_log() == []

    @pytest.mark.parametrize(
        ("hook_params", "message"),
        [
            ({"timout": 5}, "hook_params has an unknown argument 'timout'"),
            ({"max_retries": -1}, r"hook_params\['max_retries'\]"),
            (["timeout"], "hook_params must be a dict"),
        ],
        ids=["typo", "bad-value", "not-a-dict"],
    )
    def test_a_hook_params_typo_fails_the_dag_import_not_the_run(
        self, jobmojito_sandbox: Any, hook_params: Any, message: str
    ) -> None:
        with pytest.raises(JobMojitoArgumentError, match=f"InterviewStateSensor 'wait': {message}"):
            InterviewStateSensor(task_id="wait", position_id=str(uuid.uuid4()), hook_params=hook_params)
        assert jobmojito_sandbox.requests_log() == []

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"status": "actve"}, "status must be one of draft, active"),
            ({"failure_status": ["archived", "closed"]}, "failure_status must be one of"),
            ({"failure_status": "active"}, r"status and failure_status share \['active'\]"),
            (
                {"status": "completed", "failure_status": ["completed"]},
                r"status and failure_status share \['completed'\]",
            ),
            ({"hook_params": {"timout": 5}}, "hook_params has an unknown argument 'timout'"),
        ],
        ids=["status", "failure-status", "default-status-shared", "shared", "hook-params"],
    )
    def test_a_mapped_sensor_with_a_literal_that_can_never_work_fails_the_dag_import(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        with (
            dag_for("mapped_bad"),
            pytest.raises(JobMojitoArgumentError, match=f"InterviewStateSensor 'wait': {message}"),
        ):
            InterviewStateSensor.partial(task_id="wait", **kwargs)

    def test_a_mapped_sensor_with_good_or_templated_literals_builds(self) -> None:
        with dag_for("mapped_good") as dag:
            InterviewStateSensor.partial(
                task_id="wait",
                status="{{ params.status }}",
                failure_status=["archived"],
                hook_params={"timeout": 5, "max_retries": None},
            ).expand(position_id=[str(uuid.uuid4()), str(uuid.uuid4())])
        assert dag.task_ids == ["wait"]


class TestRescheduleGuard:
    """Airflow loses reschedule-mode sensors that poke often (apache/airflow#71172: 266 of 300 at
    poke_interval=5): such a sensor is refused when the DAG is parsed, with the way out."""

    @pytest.mark.parametrize(
        "poke_interval", [5, 59.5, timedelta(seconds=30)], ids=["5", "59.5", "timedelta-30"]
    )
    @pytest.mark.parametrize("how", ["constructor", "partial"])
    def test_reschedule_mode_with_a_short_poke_interval_fails_the_dag_import(
        self, poke_interval: Any, how: str
    ) -> None:
        arguments = {"task_id": "wait", "mode": "reschedule", "poke_interval": poke_interval}

        def build() -> object:
            if how == "partial":
                return InterviewStateSensor.partial(deferrable=False, **arguments)
            return InterviewStateSensor(position_id=str(uuid.uuid4()), deferrable=False, **arguments)

        with dag_for(f"reschedule_{how}"), pytest.raises(JobMojitoArgumentError) as raised:
            build()
        message = str(raised.value)
        assert message.startswith("InterviewStateSensor 'wait': mode='reschedule' with poke_interval=")
        for part in ("apache/airflow#71172", "deferrable=True", "allow_short_reschedule=True"):
            assert part in message
        assert f"{SAFE_RESCHEDULE_INTERVAL:g} s" in message

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"mode": "reschedule", "poke_interval": SAFE_RESCHEDULE_INTERVAL},
            {"mode": "reschedule"},  # Airflow's default poke_interval, 60 s
            {"mode": "reschedule", "poke_interval": 5, "deferrable": True},
            {"mode": "reschedule", "poke_interval": 5, "allow_short_reschedule": True},
            {"mode": "poke", "poke_interval": 5},
        ],
        ids=["at-the-floor", "default-interval", "deferrable", "allowed", "poke-mode"],
    )
    @pytest.mark.parametrize("how", ["constructor", "partial"])
    def test_the_safe_ways_build(self, kwargs: dict[str, Any], how: str) -> None:
        arguments = {"task_id": "wait", "deferrable": False, **kwargs}
        with dag_for(f"safe_{how}"):
            if how == "partial":
                InterviewStateSensor.partial(**arguments).expand(position_id=[str(uuid.uuid4())])
            else:
                InterviewStateSensor(position_id=str(uuid.uuid4()), **arguments)

    @pytest.mark.parametrize("where", ["dag", "task-group", "nested-task-group", "task-default-args"])
    @pytest.mark.parametrize("how", ["constructor", "partial"])
    def test_reschedule_mode_with_a_short_poke_interval_from_default_args_fails_the_dag_import(
        self, where: str, how: str, recwarn: pytest.WarningsRecorder
    ) -> None:
        unsafe = {"mode": "reschedule", "poke_interval": 5, "deferrable": False}
        arguments: dict[str, Any] = {"task_id": "wait"}
        if where == "task-default-args":
            arguments["default_args"] = unsafe
        with (
            DAG(
                f"reschedule_defaults_{how}_{where}",
                schedule=None,
                start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
                default_args=unsafe if where == "dag" else {},
            ),
            TaskGroup("outer", default_args=unsafe if where == "nested-task-group" else {}),
            TaskGroup("inner", default_args=unsafe if where == "task-group" else {}),
            pytest.raises(JobMojitoArgumentError) as raised,
        ):
            build(how, **arguments)
        assert_refused(str(raised.value), "outer.inner.wait", 5)
        del raised
        gc.collect()  # a refused partial is never expanded, and Airflow need not say so
        assert [str(w.message) for w in recwarn if "never mapped" in str(w.message)] == []

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"deferrable": True},
            {"allow_short_reschedule": True},
            {"mode": "poke"},
            {"poke_interval": timedelta(minutes=1)},
        ],
        ids=["deferrable", "allowed", "poke-mode", "safe-interval"],
    )
    @pytest.mark.parametrize("how", ["constructor", "partial"])
    def test_a_task_s_own_safe_arguments_override_unsafe_default_args(
        self, kwargs: dict[str, Any], how: str
    ) -> None:
        with DAG(
            f"override_{how}_{next(iter(kwargs))}",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            default_args={"mode": "reschedule", "poke_interval": 5, "deferrable": False},
        ) as dag:
            if how == "partial":
                InterviewStateSensor.partial(task_id="wait", **kwargs).expand(position_id=[str(uuid.uuid4())])
            else:
                InterviewStateSensor(task_id="wait", position_id=str(uuid.uuid4()), **kwargs)
        assert dag.task_ids == ["wait"]

    @pytest.mark.parametrize(
        "kwargs",
        [{"allow_short_reschedule": False}, {"allow_short_reschedule": None}, {"deferrable": None}],
        ids=["not-allowed", "allowed-none", "deferrable-none"],
    )
    @pytest.mark.parametrize("how", ["constructor", "partial"])
    def test_only_true_lets_a_short_reschedule_through(self, kwargs: dict[str, Any], how: str) -> None:
        arguments = {
            "task_id": "wait",
            "mode": "reschedule",
            "poke_interval": 0,
            "deferrable": False,
            **kwargs,
        }
        with dag_for(f"only_true_{how}"), pytest.raises(JobMojitoArgumentError) as raised:
            build(how, **arguments)
        assert_refused(str(raised.value), "wait", 0)

    @pytest.mark.parametrize(
        "poke_interval", [None, "{{ params.interval }}", -5], ids=["none", "template", "negative"]
    )
    def test_a_poke_interval_airflow_refuses_gets_airflow_s_own_error(self, poke_interval: Any) -> None:
        # poke_interval is no template field: Airflow takes a number or a timedelta, nothing else
        # (Airflow 3 raises a ValueError, 2.11 an AirflowException).
        with pytest.raises((ValueError, AirflowException), match="poke_interval") as raised:
            InterviewStateSensor(
                task_id="wait",
                position_id=str(uuid.uuid4()),
                mode="reschedule",
                deferrable=False,
                poke_interval=poke_interval,
            )
        assert not isinstance(raised.value, JobMojitoArgumentError)


def build(how: str, **arguments: Any) -> object:
    """An InterviewStateSensor of ``arguments``: constructed, or started with ``partial()``."""
    if how == "partial":
        return InterviewStateSensor.partial(**arguments)
    return InterviewStateSensor(position_id=str(uuid.uuid4()), **arguments)


def assert_refused(message: str, task_id: str, seconds: float) -> None:
    """The guard's refusal: the task, the interval, the floor and every way out."""
    assert message.startswith(
        f"InterviewStateSensor {task_id!r}: mode='reschedule' with poke_interval={seconds:g} s"
    )
    for part in ("apache/airflow#71172", "deferrable=True", "allow_short_reschedule=True"):
        assert part in message
    assert f"poke_interval >= {SAFE_RESCHEDULE_INTERVAL:g}" in message


class TestPoke:
    def test_a_wanted_status_ends_the_wait_with_the_id_and_status(self, position: str) -> None:
        sensor = InterviewStateSensor(
            task_id="wait", position_id=position.upper(), status=["active", "completed"]
        )
        result = sensor.poke({})
        assert result.is_done
        assert result.xcom_value == {"position_id": position, "status": "active"}

    def test_another_status_keeps_waiting(self, position: str) -> None:
        assert (
            not InterviewStateSensor(task_id="wait", position_id=position, status="completed")
            .poke({})
            .is_done
        )

    def test_a_failure_status_fails_without_retries(self, position: str) -> None:
        sensor = InterviewStateSensor(
            task_id="w", position_id=position, status="completed", failure_status="active"
        )
        with pytest.raises(AirflowFailException, match="reached the failure status 'active'"):
            sensor.poke({})

    def test_an_unknown_position_fails_clearly_without_retries(self, position: str) -> None:
        sensor = InterviewStateSensor(task_id="wait", position_id=str(uuid.uuid4()), status="completed")
        with pytest.raises(JobMojitoNotFoundError, match="404") as raised:
            sensor.poke({})
        assert isinstance(raised.value, AirflowFailException)

    @pytest.mark.parametrize("status", [503, 500], ids=["unavailable", "server-error"])
    def test_an_api_that_is_down_does_not_end_the_wait(
        self, position: str, jobmojito_sandbox: Any, status: int
    ) -> None:
        jobmojito_sandbox.add_fault("status", status=status, count=100, path=GET)
        sensor = InterviewStateSensor(
            task_id="wait", position_id=position, status="active", hook_params={"max_retries": 1}
        )
        assert not sensor.poke({}).is_done
        jobmojito_sandbox.clear_faults()
        assert sensor.poke({}).is_done


P = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


class TestExecuteComplete:
    """What a deferred sensor does with the trigger's event: this version's, or 1.0.0's (a task
    deferred before an upgrade resumes after it, with the event the old trigger fired)."""

    @pytest.fixture
    def sensor(self) -> InterviewStateSensor:
        return InterviewStateSensor(task_id="wait", position_id=P, status="completed", timeout=60)

    @pytest.mark.parametrize(
        "event",
        [
            {"outcome": "success", "position_id": P, "status": "completed"},
            {"status": "success", "position_id": P, "position_status": "completed"},
        ],
        ids=["now", "1.0.0"],
    )
    def test_success_returns_the_id_and_the_positions_status(
        self, sensor: InterviewStateSensor, event: dict[str, Any]
    ) -> None:
        assert sensor.execute_complete({}, event) == {"position_id": P, "status": "completed"}

    @pytest.mark.parametrize(
        "event",
        [
            {"outcome": "failure", "position_id": P, "status": "archived"},
            {"status": "failure", "position_id": P, "position_status": "archived"},
        ],
        ids=["now", "1.0.0"],
    )
    def test_failure_fails_without_retries(self, sensor: InterviewStateSensor, event: dict[str, Any]) -> None:
        with pytest.raises(AirflowFailException, match=f"Position {P} reached the failure status 'archived'"):
            sensor.execute_complete({}, event)

    @pytest.mark.parametrize(
        "event",
        [
            {"outcome": "timeout", "position_id": P, "status": "active"},
            {"status": "timeout", "position_id": P},
        ],
        ids=["now", "1.0.0"],
    )
    def test_timeout_is_the_sensors_timeout(
        self, sensor: InterviewStateSensor, event: dict[str, Any]
    ) -> None:
        with pytest.raises(AirflowSensorTimeout, match=f"Position {P}: the sensor timed out after 60"):
            sensor.execute_complete({}, event)

    @pytest.mark.parametrize(
        "event",
        [
            {
                "outcome": "error",
                "position_id": P,
                "status": "active",
                "message": "404: gone",
                "transient": False,
            },
            # 1.0.0 ended a wait only on the errors it did not retry.
            {"status": "error", "position_id": P, "message": "404: gone"},
        ],
        ids=["now", "1.0.0"],
    )
    def test_a_permanent_error_fails_without_retries(
        self, sensor: InterviewStateSensor, event: dict[str, Any]
    ) -> None:
        with pytest.raises(JobMojitoWaitError, match=f"^Position {P}: 404: gone$") as raised:
            sensor.execute_complete({}, event)
        assert isinstance(raised.value, AirflowFailException)
        assert not raised.value.transient

    def test_a_transient_error_may_be_retried(self, sensor: InterviewStateSensor) -> None:
        event = {"outcome": "error", "position_id": P, "status": None, "message": "503", "transient": True}
        with pytest.raises(JobMojitoError, match=f"^Position {P}: 503$") as raised:
            sensor.execute_complete({}, event)
        assert not isinstance(raised.value, AirflowFailException)
        assert raised.value.transient

    def test_an_event_of_no_known_shape_is_an_error_naming_its_keys_only(
        self, sensor: InterviewStateSensor
    ) -> None:
        with pytest.raises(JobMojitoError, match=r"wait'.*keys: note, position_id") as raised:
            sensor.execute_complete({}, {"position_id": P, "note": "s3cr3t"})
        assert "s3cr3t" not in str(raised.value)


@pytest.mark.usefixtures("airflow_db")
class TestInDagRuns:
    @pytest.mark.parametrize(
        "mode",
        [
            {"mode": "poke"},
            pytest.param(
                {"mode": "reschedule"},
                marks=pytest.mark.skipif(
                    AIRFLOW_3_0,
                    reason="Airflow 3.0's reschedule mode fails under dag.test() by itself "
                    "(BaseSensorOperator subtracts a string start_date, airflow/sdk/bases/sensor.py)",
                ),
            ),
            {"deferrable": True},
        ],
        ids=["poke", "reschedule", "deferrable"],
    )
    def test_waits_until_a_recruiter_completes_the_position(
        self, position: str, jobmojito_sandbox: Any, recruiter: Any, mode: dict[str, Any]
    ) -> None:
        recruiter(position, "completed", after=2)
        with dag_for(f"wait_{next(iter(mode.values()))}") as dag:
            InterviewStateSensor(
                task_id="wait",
                position_id=position,
                status="completed",
                poke_interval=1,
                timeout=120,
                # A one-run test is not the many-sensor load that loses tasks (see TestRescheduleGuard).
                **({"allow_short_reschedule": True} if mode.get("mode") == "reschedule" else {}),
                **mode,
            )
        run = run_inline_dag(dag)
        assert run.state == "success"
        ti = run.get_task_instance("wait")
        assert ti.xcom_pull(task_ids="wait") == {"position_id": position, "status": "completed"}
        assert reads(jobmojito_sandbox) >= 3  # it waited: read before, and after, the change

    @pytest.mark.parametrize(
        "arguments",
        [({"mode": "reschedule"}, {"poke_interval": [5]}), ({"poke_interval": 5}, {"mode": ["reschedule"]})],
        ids=["poke-interval", "mode"],
    )
    def test_a_short_reschedule_given_to_expand_fails_each_instance_without_retries_or_reads(
        self,
        position: str,
        jobmojito_sandbox: Any,
        arguments: tuple[dict[str, Any], dict[str, Any]],
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # expand()'s values are known only when an instance is built: refused then, by __init__.
        partial, mapped = arguments
        with dag_for(f"expand_{next(iter(mapped))}") as dag:
            InterviewStateSensor.partial(
                task_id="wait", status="completed", deferrable=False, retries=2, **partial
            ).expand(position_id=[position], **mapped)
        capfd.readouterr()
        run = run_inline_dag(dag)
        ti = run.get_task_instance("wait", map_index=0)
        assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
        assert reads(jobmojito_sandbox) == 0
        # Airflow 2 logs the error as the record's exception, Airflow 3 in the line.
        errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
        logged = "\n".join(logged_lines(capfd, caplog) + errors)
        assert "mode='reschedule' with poke_interval=5 s is below the safe floor" in logged

    @pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
    def test_a_failure_status_fails_the_run_without_airflow_retries(
        self, position: str, recruiter: Any, deferrable: bool
    ) -> None:
        recruiter(position, "archived", after=2)
        with dag_for(f"fail_{deferrable}") as dag:
            InterviewStateSensor(
                task_id="wait",
                position_id=position,
                status="completed",
                failure_status=["archived", "deleted"],
                poke_interval=1,
                retries=2,
                deferrable=deferrable,
            )
        run = run_inline_dag(dag)
        ti = run.get_task_instance("wait")
        assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)

    @pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
    @pytest.mark.parametrize("seen", ["failure-status", "unknown-position"])
    def test_with_soft_fail_a_failure_seen_by_the_first_check_skips_the_task(
        self, position: str, jobmojito_sandbox: Any, deferrable: bool, seen: str
    ) -> None:
        if seen == "failure-status":
            jobmojito_sandbox.admin_set_status(position, "archived")
        else:
            position = str(uuid.uuid4())
        with dag_for(f"soft_fail_{seen}_{deferrable}") as dag:
            InterviewStateSensor(
                task_id="wait",
                position_id=position,
                status="completed",
                failure_status=["archived"],
                poke_interval=1,
                retries=2,
                soft_fail=True,
                deferrable=deferrable,
            )
        run = run_inline_dag(dag)
        ti = run.get_task_instance("wait")
        assert (ti.state, ti.try_number) == ("skipped", 1)

    def test_a_deferred_wait_that_gets_a_404_fails_the_run_without_airflow_retries(
        self, jobmojito_sandbox: Any, jobmojito_conn: Any
    ) -> None:
        # A position the list does not show is read by itself, so a 404 mid-wait reaches it.
        position = str(uuid.uuid4())
        jobmojito_sandbox.seed([{"id": position, "status": "active", "type": "assessment"}])
        jobmojito_conn()
        done = threading.Event()

        def remove_after_the_trigger_read_it() -> None:
            while not done.wait(0.05):
                if sum(1 for r in jobmojito_sandbox.requests_log() if r["path"] == GET) >= 2:
                    jobmojito_sandbox.add_fault(
                        "status", status=404, count=1, path=GET, body={"error": "No position found."}
                    )
                    return

        thread = threading.Thread(target=remove_after_the_trigger_read_it, daemon=True)
        thread.start()
        try:
            with dag_for("gone_deferrable") as dag:
                InterviewStateSensor(
                    task_id="wait",
                    position_id=position,
                    status="completed",
                    poke_interval=1,
                    retries=2,
                    deferrable=True,
                )
            run = run_inline_dag(dag)
        finally:
            done.set()
            thread.join()
        ti = run.get_task_instance("wait")
        assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
        assert jobmojito_sandbox.faults() == []  # the trigger's read got the 404
