"""`make demo`: change a position's state through JobMojitoHook against a local sandbox."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from airflow_provider_jobmojito.sandbox import SandboxServer

HERE = Path(__file__).resolve().parent


def main() -> int:
    seed = json.loads((HERE / "demo_positions.json").read_text())["positions"]
    with SandboxServer(positions=seed) as sandbox:
        os.environ["AIRFLOW_CONN_JOBMOJITO_DEFAULT"] = json.dumps(
            {"conn_type": "jobmojito", "host": sandbox.api_url, "password": sandbox.issue_token()}
        )
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        hook = JobMojitoHook()
        position = seed[0]
        before = sandbox.position(position["id"])["status"]
        hook.set_interview_state(position["id"], status="active")
        keys = hook.enable_embedding(position["id"])
        after = sandbox.position(position["id"])
        print(f"Sandbox: {sandbox.api_url}")
        print(f"{position['name']}: {before} -> {after['status']}")
        print(f"Embedding on: {hook.embed_url(keys['embed_id'])} (signing key kept out of this output)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
