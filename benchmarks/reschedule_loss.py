"""How many mapped sensors a real deployment loses in reschedule mode with a short poke_interval.

    .venv/bin/python -m benchmarks.reschedule_loss                # 200 sensors per mode
    .venv/bin/python -m benchmarks.reschedule_loss --count 300 --parallelism 8

Airflow's open issue apache/airflow#71172: a reschedule-mode sensor whose next poke comes due
before the scheduler has recorded the end of its previous try is failed by the scheduler
("finished with state success, but the task instance's state attribute is scheduled"). That is
why :class:`~airflow_provider_jobmojito.sensors.jobmojito.InterviewStateSensor` refuses
``mode="reschedule"`` under 60 s unless told ``allow_short_reschedule=True``. This script shows
the loss, and that ``deferrable=True`` (the recommended way) does not have it.

It starts the end-to-end tests' deployment (``tests/e2e/deployment.py``: a real Airflow 3 API
server, scheduler with the LocalExecutor, DAG processor and triggerer, on SQLite, next to the
JobMojito sandbox) with ``benchmarks/dags/jobmojito_bench_sensor_modes.py`` and ``--parallelism``
worker slots. For each mode in turn it maps ``--count`` sensors over positions that are
``preparing``, all waiting for ``active`` every 5 s; once every sensor has read its position
``--pokes`` times (or was lost), or ``--max-hold`` seconds have passed, it makes every position
``active`` through the sandbox, waits for the run to end, and counts:

- ``states``: the sensors' final states; ``lost``: those not ``success``;
- ``state_mismatch_events`` and ``sensors_with_a_state_mismatch``: the scheduler's "state
  mismatch" audit-log events (its record of a task instance it believes was changed externally,
  the loss above), and how many sensors they name;
- ``reads_per_sensor`` (median, max) and the sandbox's ``get_calls`` / ``list_calls`` (what the
  waits cost the API); seconds from the flip to the end of the run.

A benchmark, not a test: nothing here asserts. The figures are printed and saved, with the
deployment's logs, in ``.test_output/reschedule-loss/``. It takes long (31 minutes for 200
sensors per mode on a 2-CPU machine that other jobs kept loaded); every process it starts is
stopped at the end, or on Ctrl-C.

Measured so (``--count 200``, the defaults): reschedule mode lost 66 of 200 sensors (66 state
mismatch events, one per lost sensor; 65 were already lost when the positions were flipped, after
the 900 s hold); deferrable mode lost 0 of 200, with 46 list calls for 200 deferred sensors.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file, not with -m
    sys.path.insert(0, str(REPO))

from tests.e2e.deployment import (  # noqa: E402 - after the path fix above
    SEED,
    Deployment,
    Profile,
    run_deployment,
    seconds_between,
    wait_for,
)

OUTPUT = REPO / ".test_output" / "reschedule-loss"
DAG_FILE = REPO / "benchmarks" / "dags" / "jobmojito_bench_sensor_modes.py"
DAGS = {"reschedule": "jobmojito_bench_reschedule", "deferrable": "jobmojito_bench_deferrable"}
GET = "/functions/v1/job-interview-get"
LIST = "/functions/v1/merchant-interview-list"
STATE_MISMATCH = "state mismatch"


def position_ids(mode: str, count: int) -> list[str]:
    """``count`` fixed position ids for one mode's run."""
    return [
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://jobmojito.test/bench/{mode}/{n}")) for n in range(count)
    ]


def profile(count: int, parallelism: int, modes: list[str]) -> Profile:
    """The e2e deployment with this benchmark's DAGs, ``parallelism`` worker slots, and its
    positions seeded ``preparing``."""
    positions = [
        {"id": pid, "name": f"Bench position {pid[:8]}", "status": "preparing"}
        for mode in modes
        for pid in position_ids(mode, count)
    ]
    base = Profile()
    return Profile(
        output=OUTPUT,
        env={**base.env, "AIRFLOW__CORE__PARALLELISM": str(parallelism)},
        dag_files=(DAG_FILE,),
        dag_ids=tuple(DAGS.values()),
        seed={"positions": [*SEED["positions"], *positions]},
    )


def reads_by_position(deployment: Deployment, ids: set[str]) -> collections.Counter[str]:
    """How many times each of ``ids`` was read with ``GET job-interview-get``."""
    counts: collections.Counter[str] = collections.Counter()
    for entry in deployment.sandbox("GET", "/_sandbox/requests")["requests"]:
        if entry["path"] == GET and entry.get("query", {}).get("position_id") in ids:
            counts[entry["query"]["position_id"]] += 1
    return counts


def sensor_list_calls(requests: list[dict[str, Any]]) -> int:
    """The list calls of the sensors' triggers (not the example AssetWatcher's, of ``completed``)."""
    return sum(1 for r in requests if r["path"] == LIST and r.get("query", {}).get("status") != "completed")


def state_mismatches(deployment: Deployment, dag_id: str) -> tuple[int, int]:
    """The scheduler's "state mismatch" events of ``dag_id``: how many, and for how many sensors."""
    events: list[dict[str, Any]] = []
    while True:
        params = {"dag_id": dag_id, "event": STATE_MISMATCH, "limit": 100, "offset": len(events)}
        answer = deployment.api("GET", "/eventLogs", params=params)
        events += answer["event_logs"]
        if not answer["event_logs"] or len(events) >= answer["total_entries"]:
            return len(events), len({e["map_index"] for e in events})


def run_mode(deployment: Deployment, mode: str, count: int, pokes: int, max_hold: float) -> dict[str, Any]:
    """One run of ``count`` sensors in ``mode``; return its figures."""
    dag_id = DAGS[mode]
    ids = position_ids(mode, count)
    wanted = set(ids)
    deployment.sandbox("DELETE", "/_sandbox/requests")
    run_id = deployment.trigger(dag_id, {"position_ids": ids})
    started = time.monotonic()

    def sensors() -> list[dict[str, Any]]:
        return [ti for ti in deployment.task_instances(dag_id, run_id) if ti["task_id"] == "wait"]

    wait_for(f"{count} mapped sensors", lambda: len(sensors()) == count, 600, 2.0)

    def gone() -> set[str]:
        return {ids[ti["map_index"]] for ti in sensors() if ti["state"] in ("failed", "upstream_failed")}

    def list_calls() -> int:
        return sensor_list_calls(deployment.sandbox("GET", "/_sandbox/requests")["requests"])

    # Reschedule mode reads each position with GET once a try; deferrable mode reads it once with
    # GET, then its trigger polls every position with one list call a round.
    def read_enough() -> bool:
        deployment.check_alive()
        reads, lost = reads_by_position(deployment, wanted), gone()
        return all(reads[pid] >= pokes or pid in lost for pid in ids)

    def all_deferred() -> bool:
        deployment.check_alive()
        return all(ti["state"] in ("deferred", "failed", "success") for ti in sensors())

    try:
        if mode == "reschedule":
            wait_for(f"{pokes} reads of each position", read_enough, max_hold, 5.0)
        else:
            wait_for("every sensor to defer", all_deferred, max_hold, 5.0)
            rounds = list_calls() + pokes
            wait_for(f"{pokes} poll rounds", lambda: list_calls() >= rounds, max_hold, 2.0)
        held_all = True
    except TimeoutError:
        held_all = False
    hold = time.monotonic() - started
    before_flip = collections.Counter(ti["state"] for ti in sensors())
    flipped = time.monotonic()
    for pid in ids:
        deployment.sandbox("POST", f"/_sandbox/positions/{pid}/status", json={"status": "active"})
    run = deployment.wait_for_run(dag_id, run_id, timeout=3600)
    after_flip = time.monotonic() - flipped
    final = sensors()
    states = collections.Counter(ti["state"] for ti in final)
    reads = reads_by_position(deployment, wanted)
    requests = deployment.sandbox("GET", "/_sandbox/requests")["requests"]
    read_counts = [reads[pid] for pid in ids]
    events, mismatched = state_mismatches(deployment, dag_id)
    return {
        "mode": mode,
        "sensors": count,
        "run_state": run["state"],
        "states": dict(states),
        "lost": count - states.get("success", 0),
        "state_mismatch_events": events,
        "sensors_with_a_state_mismatch": mismatched,
        "tries": {"max": max(ti["try_number"] for ti in final)},
        "hold_seconds": round(hold, 1),
        "every_sensor_read_enough_before_flip": held_all,
        "states_at_flip": dict(before_flip),
        "flip_to_run_end_seconds": round(after_flip, 1),
        "run_seconds": round(seconds_between(run["start_date"], run["end_date"]), 1),
        "reads_per_sensor": {"median": statistics.median(read_counts), "max": max(read_counts)},
        "get_calls": sum(1 for r in requests if r["path"] == GET),
        "list_calls": sensor_list_calls(requests),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="mapped sensors per mode (default 200)")
    parser.add_argument("--parallelism", type=int, default=8, help="worker slots ([core] parallelism; 8)")
    parser.add_argument("--pokes", type=int, default=2, help="reads of every position before the flip (2)")
    parser.add_argument("--max-hold", type=float, default=900.0, help="flip after this many seconds anyway")
    parser.add_argument("--modes", default="reschedule,deferrable", help="comma-separated, in order")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(DAGS)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")

    timings: dict[str, float] = {}
    figures: dict[str, Any] = {"count": args.count, "parallelism": args.parallelism, "pokes": args.pokes}
    # Stopped at the end (or on Ctrl-C), its logs and figures.json kept.
    deployed = contextlib.contextmanager(run_deployment)
    with deployed(profile(args.count, args.parallelism, modes), timings, figures) as deployment:
        for mode in modes:
            figures[mode] = run_mode(deployment, mode, args.count, args.pokes, args.max_hold)
            print(json.dumps(figures[mode]), flush=True)
    print(f"figures and logs: {OUTPUT}")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
