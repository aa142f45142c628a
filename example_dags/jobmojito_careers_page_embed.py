"""Put an interview on the careers page: embed it, publish the iframe snippet, then open it.

0. ``wait_until_prepared`` waits, in the triggerer, while JobMojito prepares the interview
   (status ``preparing``), and fails at once if the position was archived or deleted meanwhile.
1. ``enable_embedding`` switches iframe embedding on; the embed keys go to XCom
   (``embed_id``, ``embed_signing_key``, ``embed_url``).
2. ``publish_careers_snippet`` writes the iframe snippet for the careers page, and hands the
   signing key to the careers site's backend in a file only its owner can read.
3. ``activate`` opens the position to candidates, once the page is ready for them.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, mask_secret, task

from airflow_provider_jobmojito.operators.jobmojito import EmbedOperator, SetInterviewStateOperator
from airflow_provider_jobmojito.sensors.jobmojito import InterviewStateSensor

with DAG(
    dag_id="jobmojito_careers_page_embed",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "position_id": Param(type="string", description="The position to put on the careers page."),
        "output_dir": Param(
            str(Path(tempfile.gettempdir()) / "jobmojito-careers"),
            type="string",
            description="Where to write.",
        ),
    },
    tags=["jobmojito", "example"],
    doc_md=__doc__,
):
    # [START howto_sensor_deferrable]
    prepared = InterviewStateSensor(
        task_id="wait_until_prepared",
        position_id="{{ params.position_id }}",
        status=["draft", "active"],  # one status or a list
        failure_status=["archived", "deleted"],  # fail at once, without retries
        deferrable=True,  # wait in the triggerer; frees the worker slot
        poke_interval=30,
        timeout=6 * 3600,
    )
    # [END howto_sensor_deferrable]
    # [START howto_operator_embed]
    embed = EmbedOperator(task_id="enable_embedding", position_id="{{ params.position_id }}")
    # [END howto_operator_embed]
    prepared >> embed

    @task
    def publish_careers_snippet(embed: dict[str, str], **context: Any) -> str:
        # [START howto_xcom_signing_key]
        signing_key = context["ti"].xcom_pull(task_ids="enable_embedding", key="embed_signing_key")
        # The masker knows only what this process registered: register the pulled key again.
        mask_secret(signing_key)
        # [END howto_xcom_signing_key]
        out = Path(context["params"]["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        position_id = embed["position_id"]  # validated and canonical, so safe in a file name

        snippet = out / f"{position_id}.html"
        snippet.write_text(
            f'<iframe src="{html.escape(embed["embed_url"])}" width="100%" height="600" '
            'frameborder="0" title="Interview" allow="camera; microphone"></iframe>\n'
        )
        backend_env = out / f"{position_id}.env"
        # Owner-only even when the file already existed (the mode of os.open applies only to a
        # new file), and never through a symlink someone planted in a shared directory.
        fd = os.open(backend_env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as env_file:
            env_file.write(
                f"JOBMOJITO_EMBED_ID={embed['embed_id']}\nJOBMOJITO_EMBED_SIGNING_KEY={signing_key}\n"
            )
        return str(snippet)

    # [START howto_operator_set_state]
    activate = SetInterviewStateOperator(
        task_id="activate", position_id="{{ params.position_id }}", status="active"
    )
    # [END howto_operator_set_state]
    publish_careers_snippet(embed.output) >> activate
