"""Run the careers-page DAG and a careless DAG with the Task SDK's logging writing to a file.

Used by ``test_task_logs.py`` in a subprocess, because configuring the SDK's logging is global to
a process. Arguments: LOG_FILE OUTPUT_DIR POSITION_ID [BULK_IDS]. Prints a JSON summary on the last
line. With BULK_IDS (comma-separated), it runs only a task that switches embedding on for all of
them in one bulk call and then logs every signing key.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pendulum


def main(log_path: str, output_dir: str, position_id: str, bulk_ids: str = "") -> None:
    from airflow.sdk.log import configure_logging

    with open(log_path, "w") as log_file:
        configure_logging(output=log_file, colored_console_log=False, cache_logger_on_first_use=False)
        summary = run_bulk(bulk_ids.split(",")) if bulk_ids else run_dags(output_dir, position_id)
    print(json.dumps(summary))


def run_bulk(position_ids: list[str]) -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import DAG, redact, task

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
    from tests.conftest import run_inline_dag

    keys: list[str] = []
    with DAG("bulk_embedding", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

        @task
        def embed_all_then_leak() -> None:
            import logging

            results = JobMojitoHook().set_interview_states(position_ids, is_embedded=True, max_workers=8)
            keys.extend(result.response["embed_signing_key"] for result in results if result.response)
            leak = logging.getLogger("careless")
            for key in keys:
                leak.warning("bulk leak: key=%s", key)

        embed_all_then_leak()

    run = run_inline_dag(dag)
    return {"bulk": run.state, "keys": len(keys), "registered": all(redact(key) == "***" for key in keys)}


def run_dags(output_dir: str, position_id: str) -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import DAG, BaseHook, redact, task

    from airflow_provider_jobmojito.operators.jobmojito import EmbedOperator
    from tests.conftest import load_example_dag, run_inline_dag

    careers = load_example_dag("jobmojito_careers_page_embed", "jobmojito_careers_page_embed")
    careers_run = careers.test(run_conf={"position_id": position_id, "output_dir": output_dir})

    with DAG(
        "careless_logging", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")
    ) as careless:
        embed = EmbedOperator(task_id="embed", position_id=position_id)

        @task
        def leak(**context: Any) -> None:
            """What a careless task author might write: print the secrets it can reach."""
            key = context["ti"].xcom_pull(task_ids="embed", key="embed_signing_key")
            token = BaseHook.get_connection("jobmojito_default").password
            import logging

            logging.getLogger("careless").warning("careless leak: key=%s token=%s", key, token)

        embed >> leak()

    careless_run = run_inline_dag(careless)
    key = careless_run.get_task_instance("embed").xcom_pull(task_ids="embed", key="embed_signing_key")
    return {
        "careers": careers_run.state,
        "careless": careless_run.state,
        "key_registered": redact(key) == "***",
    }


if __name__ == "__main__":
    main(*sys.argv[1:5])
