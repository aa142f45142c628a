"""Switch careers-page embedding on for many positions, in mapped tasks of a bounded size.

Each position switched to embedded comes back with a signing key, and on Airflow 3 the task's
supervisor process registers every key with its secret masker, recompiling its pattern once per
key: the cost grows with the square of the number of keys in one task. A fresh supervisor, with an
empty masker, runs each mapped task, so splitting the positions into tasks of at most
``batch_size`` keeps that cost linear in their number (figures: the documentation's Performance
page). A deployment that sets the provider's ``split_batch`` as Airflow's
``[logging] secret_mask_adapter`` needs no batches for this: one task registers its keys with one
compile there.

``jobmojito_embed_in_batches`` takes the ``position_ids`` param (a list) and ``batch_size``
(default :data:`BATCH_SIZE`). Each mapped task pushes its ``embed_ids``, ``embed_urls`` and
``embed_signing_keys`` to XCom, by position id.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_jobmojito.operators.jobmojito import SetInterviewStateOperator

#: Positions per task: the batch size the Performance page recommends, from the figures there.
BATCH_SIZE = 100

with DAG(
    dag_id="jobmojito_embed_in_batches",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "position_ids": Param([], type="array", items={"type": "string"}, description="Positions to embed."),
        "batch_size": Param(BATCH_SIZE, type="integer", minimum=1, description="Positions per task."),
    },
    tags=["jobmojito", "example"],
    doc_md=__doc__,
):
    # [START howto_operator_bulk_in_batches]
    @task
    def batches(**context: Any) -> list[list[str]]:
        """The positions, in lists of at most ``batch_size``: one mapped task each."""
        ids: list[str] = context["params"]["position_ids"]
        size: int = context["params"]["batch_size"]
        return [ids[start : start + size] for start in range(0, len(ids), size)]

    SetInterviewStateOperator.partial(
        task_id="embed",
        is_embedded=True,
        max_workers=8,
        retries=2,
    ).expand(position_ids=batches())
    # [END howto_operator_bulk_in_batches]
