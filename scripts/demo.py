"""`make demo`: the example DAGs, end to end, against a local JobMojito sandbox.

Starts the sandbox on a free port with the positions of ``demo_positions.json``, points
``AIRFLOW_CONN_JOBMOJITO_DEFAULT`` at it, uses ``.demo/airflow_home`` as AIRFLOW_HOME, runs the
example DAGs with ``dag.test()``, prints what changed, and stops the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
SEED = REPO / "scripts" / "demo_positions.json"
DATA_ENGINEER, ANALYTICS_ENGINEER, COORDINATOR, SRE, DESIGNER = (
    p["id"] for p in json.loads(SEED.read_text())["positions"]
)


def main() -> int:
    DEMO.mkdir(exist_ok=True)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_jobmojito.sandbox", "--port", "0", "--seed", str(SEED)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        base_url = sandbox.stdout.readline().strip().rsplit(" ", 1)[-1]
        return run_demo(base_url)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def run_demo(base_url: str) -> int:
    home = DEMO / "airflow_home"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            # Sign in as the sandbox's demo user, as a real deployment with e-mail + password would.
            "AIRFLOW_CONN_JOBMOJITO_DEFAULT": json.dumps(
                {
                    "conn_type": "jobmojito",
                    "host": f"{base_url}/functions/v1",
                    "login": "demo@jobmojito.test",
                    "password": "sandbox-password",
                }
            ),
        }
    )
    # The results example writes its day files here, and reads them back.
    os.environ["JOBMOJITO_RESULTS_FOLDER"] = (DEMO / "results").as_uri()
    seed_results(base_url)
    log_path = DEMO / "airflow.log"
    print(f"JobMojito sandbox: {base_url}/functions/v1   (Airflow's own log: {log_path.relative_to(REPO)})")
    before = positions(base_url)

    from airflow.sdk.log import configure_logging

    with log_path.open("w") as log_file:
        # Airflow's task logging, masked, goes to the file; this console keeps the summary.
        configure_logging(output=log_file, colored_console_log=False, cache_logger_on_first_use=False)
        runs = run_example_dags()

    after = positions(base_url)
    print()
    for dag_id, state, seconds in runs:
        print(f"  {state:<8} {dag_id:<38} {seconds:5.1f} s")
    print()
    print(f"  {'position':<36}  {'name':<36}  {'before':<17}  after")
    for position_id, now in after.items():
        print(f"  {position_id}  {now['name']:<36}  {describe(before[position_id]):<17}  {describe(now)}")
    snippet = DEMO / "careers" / f"{DESIGNER}.html"
    print()
    print(f"  Embed URL:    {embed_url(after[DESIGNER])}")
    print(f"  Snippet file: {snippet.relative_to(REPO)}")
    print(f"                {snippet.read_text().strip()}")
    print()
    for day_file in sorted((DEMO / "results").glob("results_*.jsonl")):
        count = len(day_file.read_text().splitlines())
        print(f"  Results file: {day_file.relative_to(REPO)}  ({count} results)")
    failed = [dag_id for dag_id, state, _ in runs if state != "success"]
    if failed:
        print(f"\nFailed: {', '.join(failed)}; see {log_path}")
        return 1
    return 0


def run_example_dags() -> list[tuple[str, str, float]]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.resetdb()
    bag = DagBag(dag_folder=str(REPO / "example_dags"))
    plan: list[tuple[str, dict[str, Any]]] = [
        ("jobmojito_activate_positions", {"position_ids": [DATA_ENGINEER, ANALYTICS_ENGINEER]}),
        ("jobmojito_hiring_closed", {"position_ids": [COORDINATOR, SRE]}),
        # Under a scheduler the producer's Asset event starts this run; dag.test() starts it by hand.
        ("jobmojito_archive_closed_positions", {"position_ids": [COORDINATOR, SRE]}),
        ("jobmojito_careers_page_embed", {"position_id": DESIGNER, "output_dir": str(DEMO / "careers")}),
        # Plans jobmojito_positions.yaml against what the DAGs above left, then applies the plan.
        ("jobmojito_positions_as_code", {}),
    ]
    # Nobody can click in a demo: the approval step (Airflow 3.1+) is marked approved.
    test_kwargs: dict[str, dict[str, Any]] = {
        "jobmojito_positions_as_code": {"mark_success_pattern": "^approve$"}
    }
    runs = []
    for dag_id, conf in plan:
        started = time.monotonic()
        run = bag.dags[dag_id].test(run_conf=conf, **test_kwargs.get(dag_id, {}))
        runs.append((dag_id, str(run.state), time.monotonic() - started))
    # Yesterday's results (the data interval of today's scheduled run) to a JSON Lines file, then
    # a summary per position: a scheduled DAG, run for its logical date.
    started = time.monotonic()
    run = bag.dags["jobmojito_results_to_storage"].test(logical_date=today())
    runs.append(("jobmojito_results_to_storage", str(run.state), time.monotonic() - started))
    return runs


def today() -> datetime:
    """Midnight UTC today."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def seed_results(base_url: str) -> None:
    """Interview results of yesterday (the results example's data interval) for two positions;
    a third of them updated later that day (processed and scored)."""
    yesterday = today() - timedelta(days=1)
    for position, count in ((DATA_ENGINEER, 120), (ANALYTICS_ENGINEER, 45)):
        created = control(
            base_url,
            {
                "create": count,
                "definition_id": position,
                "at": (yesterday + timedelta(hours=1)).isoformat(),
                "spread_seconds": 36000,
            },
        )["created"]
        for _ in range(2):
            later = (yesterday + timedelta(hours=12)).isoformat()
            control(base_url, {"ids": created[: count // 3], "at": later, "spread_seconds": 3600})


def control(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 (the local sandbox, over http)
        f"{base_url}/_sandbox/results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the local sandbox)
        answer: dict[str, Any] = json.load(response)
    return answer


def positions(base_url: str) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/_sandbox/positions", timeout=10) as response:  # noqa: S310
        return {p["id"]: p for p in json.load(response)["positions"]}


def describe(position: dict[str, Any]) -> str:
    return f"{position['status']}{', embedded' if position['embed_id'] else ''}"


def embed_url(position: dict[str, Any]) -> str:
    return f"https://try.interviewmojito.com/embed?embed_id={position['embed_id']}"


if __name__ == "__main__":
    sys.exit(main())
