"""The "Embedded interview" extra link, resolved in real DAG runs against the sandbox.

One DAG run holds every case. Each is checked the ways Airflow itself reads the link: on Airflow 3
the worker calls ``get_link`` when the task ends and stores the URL in XCom under the link's
``xcom_key``, which the API server reads back through the serialized DAG; on Airflow 2 the web server
deserializes the DAG (the link class must be registered by the provider) and calls ``get_link``.
A downstream task also calls ``get_link`` itself, inside a worker, on both lines.
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_jobmojito.links.jobmojito import EmbeddedInterviewLink
from airflow_provider_jobmojito.operators.jobmojito import EmbedOperator, SetInterviewStateOperator
from tests.conftest import AIRFLOW_V3, logged_lines, run_inline_dag

LINK = "Embedded interview"
#: Positions P[0] to P[8] are in the sandbox (P[2] embedded); P[9] is not.
P = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(10)]

#: Each task, and the position whose embed URL its link shows (None: no link).
EXPECTED: dict[tuple[str, int], str | None] = {
    ("embed", -1): P[0],
    ("set_state_embedding_on", -1): P[1],
    ("embedding_off", -1): None,
    ("status_only", -1): None,
    ("bulk", -1): None,
    ("no_xcom_push", -1): None,
    ("mapped", 0): P[7],
    ("mapped", 1): P[8],
    ("unknown_position", -1): None,
}
#: The tasks meant to fail.
FAILING = {"unknown_position"}


def links_dag() -> DAG:
    with DAG(
        "embedded_interview_link", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")
    ) as dag:
        tasks = [
            EmbedOperator(task_id="embed", position_id=P[0]),
            SetInterviewStateOperator(
                task_id="set_state_embedding_on", position_id=P[1], status="active", is_embedded=True
            ),
            EmbedOperator(task_id="embedding_off", position_id=P[2], is_embedded=False),
            SetInterviewStateOperator(task_id="status_only", position_id=P[3], status="active"),
            SetInterviewStateOperator(task_id="bulk", position_ids=[P[4], P[5]], is_embedded=True),
            EmbedOperator(task_id="no_xcom_push", position_id=P[6], do_xcom_push=False),
            EmbedOperator.partial(task_id="mapped").expand(position_id=[P[7], P[8]]),
            EmbedOperator(task_id="unknown_position", position_id=P[9]),
        ]

        @task(trigger_rule="all_done")
        def links_from_a_worker(ti: Any = None, dag: Any = None) -> dict[str, str]:
            """``get_link`` called in a worker, for every task instance above."""
            from airflow.providers.common.compat.sdk import TaskInstanceKey

            links = {}
            for task_id, map_index in EXPECTED:
                operator = dag.get_task(task_id)
                key = TaskInstanceKey(ti.dag_id, task_id, ti.run_id, map_index=map_index)
                links[f"{task_id}[{map_index}]"] = EmbeddedInterviewLink().get_link(operator, ti_key=key)
            return links

        tasks >> links_from_a_worker()
    return dag


def served_dag(dag: DAG) -> Any:
    """The DAG as Airflow's UI server holds it: serialized, then deserialized."""
    try:
        from airflow.serialization.serialized_objects import DagSerialization as Serialization
    except ImportError:  # Airflow 2.11 to 3.2
        from airflow.serialization.serialized_objects import (
            SerializedDAG as Serialization,
        )
    return Serialization.from_dict(Serialization.to_dict(dag))


@pytest.mark.usefixtures("airflow_db")
def test_the_link_shows_the_embed_url_of_one_embedded_position(
    jobmojito_sandbox: Any, jobmojito_conn: Any
) -> None:
    jobmojito_sandbox.seed([{"id": p, "status": "draft", "embedded": p == P[2]} for p in P[:9]])
    assert jobmojito_sandbox.position(P[2])["embed_id"]
    jobmojito_conn()
    dag = links_dag()
    run = run_inline_dag(dag)
    assert run.state == "success"

    def url_of(position: str | None) -> str:
        if position is None:
            return ""
        embed_id = jobmojito_sandbox.position(position)["embed_id"]
        assert embed_id
        return f"https://try.interviewmojito.com/embed?embed_id={embed_id}"

    served = served_dag(dag)
    link = EmbeddedInterviewLink()
    worker_links = run.get_task_instance("links_from_a_worker").xcom_pull(task_ids="links_from_a_worker")
    for (task_id, map_index), position in EXPECTED.items():
        expected = url_of(position)
        ti = run.get_task_instance(task_id, map_index=map_index)
        where = f"{task_id}[{map_index}]"
        assert ti.state == ("failed" if task_id in FAILING else "success"), where
        assert worker_links[where] == expected, where
        # What the UI's server answers for the task instance's links.
        assert served.get_task(task_id).get_extra_links(ti, LINK) == expected, where
        if AIRFLOW_V3:
            # The worker stored the URL when the task ended (dag.test() runs the same finalize()).
            stored = ti.xcom_pull(task_ids=task_id, key=link.xcom_key, map_indexes=map_index)
            assert stored == expected, where
        else:
            # The web server's call, made here: Airflow 2 computes the link when it is viewed.
            assert link.get_link(dag.get_task(task_id), ti_key=ti.key) == expected, where
    assert jobmojito_sandbox.position(P[2])["embed_id"] is None
    # The bulk task's URLs are in its embed_urls XCom, by position: one task, no one link.
    bulk = run.get_task_instance("bulk")
    assert bulk.xcom_pull(task_ids="bulk", key="embed_urls") == {p: url_of(p) for p in P[4:6]}


def test_the_operators_carry_the_link() -> None:
    for operator in (EmbedOperator, SetInterviewStateOperator):
        assert [type(link) for link in operator.operator_extra_links] == [EmbeddedInterviewLink]
    assert EmbeddedInterviewLink().name == LINK


def test_the_xcom_keys_are_still_the_operators_module_s() -> None:
    # They live in airflow_provider_jobmojito.xcom (so the link need not import the operators);
    # 1.0.0 documented them in the operators module, and they stay importable and public there.
    from airflow_provider_jobmojito import xcom
    from airflow_provider_jobmojito.operators import jobmojito as operators

    keys = {name: value for name, value in vars(xcom).items() if name.startswith("XCOM_")}
    assert keys == {
        "XCOM_EMBED_ID": "embed_id",
        "XCOM_EMBED_SIGNING_KEY": "embed_signing_key",
        "XCOM_EMBED_URL": "embed_url",
        "XCOM_EMBED_IDS": "embed_ids",
        "XCOM_EMBED_SIGNING_KEYS": "embed_signing_keys",
        "XCOM_EMBED_URLS": "embed_urls",
        "XCOM_RESULTS": "results",
    }
    for name, value in keys.items():
        assert getattr(operators, name) == value
        assert name in operators.__all__


@pytest.mark.usefixtures("airflow_db")
def test_a_task_that_pushes_no_embed_url_logs_no_xcom_not_found_error(
    jobmojito_sandbox: Any,
    jobmojito_conn: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobmojito_sandbox.seed([{"id": p, "status": "draft", "embedded": p == P[3]} for p in P[:7]])
    jobmojito_conn()
    with DAG(
        "link_of_tasks_that_push_no_url", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")
    ) as dag:
        SetInterviewStateOperator(task_id="status_only", position_id=P[0], status="active")
        SetInterviewStateOperator.partial(task_id="mapped_status_only", status="active").expand(
            position_id=[P[1], P[2]]
        )
        EmbedOperator(task_id="embedding_off", position_id=P[3], is_embedded=False)
        SetInterviewStateOperator(task_id="bulk", position_ids=[P[4], P[5]], is_embedded=True)
        EmbedOperator(task_id="no_xcom_push", position_id=P[6], do_xcom_push=False)
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        run = run_inline_dag(dag)
    assert run.state == "success"
    logged = logged_lines(capfd, caplog)
    # The tasks' logs were captured: each task's line is there.
    for position in P[:3]:
        assert any(f"position {position} -> active (" in line for line in logged), position
    assert any("Changed 2 position(s)" in line for line in logged)
    assert [line for line in logged if "XCom not found" in line] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
