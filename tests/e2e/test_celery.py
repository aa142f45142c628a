"""The provider on a distributed deployment: the CeleryExecutor with two workers, PostgreSQL, Redis.

``tests/e2e/distributed.py`` starts it. In order:

1. the example DAGs succeed, as in ``test_dag_runs.py`` (whose tests run here again, the activate
   DAG with 24 positions), and their task instances ran on both workers;
2. 200 positions activated by 200 mapped task instances, in sign-in mode: they succeed, and the
   sign-ins are counted;
3. the same 200 positions archived by one bulk task; both runs' times are kept in ``figures.json``;
4. a worker is killed (SIGKILL, its process group and task processes) while it runs slow mapped
   tasks: the scheduler finds their heartbeats missing, their retries run on the other worker, and
   every position ends active;
5. no log of any component, worker or task holds a secret (``test_dag_runs.py``'s check).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pendulum
import pytest

from tests.e2e import test_dag_runs
from tests.e2e.deployment import Deployment, seconds_between, wait_for
from tests.e2e.distributed import (
    ACTIVATE_MANY,
    BULK_DAG,
    HEARTBEAT_TIMEOUT,
    MAPPED_DAG,
    SCALE,
    SLOW,
    SLOW_DAG,
    WORKER_CONCURRENCY,
    WORKERS,
)

pytestmark = pytest.mark.e2e_celery

#: A run of 200 tasks on two workers of four slots each, on a slow machine: generous.
LONG_RUN_TIMEOUT = 1800.0
SIGN_IN_PATH = "/auth/v1/token"
SIGNED_IN = "Signed in to JobMojito as "


@pytest.fixture(scope="module")
def deployment(celery_deployment: Deployment) -> Deployment:
    """The tests reused from ``test_dag_runs.py`` run against the distributed deployment."""
    return celery_deployment


@pytest.fixture(scope="module")
def activate_ids() -> tuple[str, ...]:
    """Enough mapped task instances for both workers to take some."""
    return ACTIVATE_MANY


example_runs = test_dag_runs.example_runs
test_activate_positions = test_dag_runs.test_activate_positions
test_careers_page_embed = test_dag_runs.test_careers_page_embed
test_hiring_closed_archives_through_the_asset = test_dag_runs.test_hiring_closed_archives_through_the_asset
test_other_positions_untouched = test_dag_runs.test_other_positions_untouched


def _spread(tis: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(ti["hostname"]) for ti in tis).items()))


def test_example_tasks_ran_on_both_workers(
    deployment: Deployment, example_runs: test_dag_runs.ExampleRuns, figures: dict[str, Any]
) -> None:
    tis = [
        ti
        for dag_id, (run_id, _) in example_runs.runs.items()
        for ti in deployment.task_instances(dag_id, run_id)
    ]
    spread = _spread(tis)
    figures["spread: example runs (task instances per worker)"] = spread
    assert set(spread) == set(WORKERS), spread


def _sign_ins(deployment: Deployment) -> int:
    return sum(
        1 for r in deployment.sandbox("GET", "/_sandbox/requests")["requests"] if r["path"] == SIGN_IN_PATH
    )


@dataclass
class Run:
    """A finished run of a test DAG, and what was measured around it."""

    run_id: str
    run: dict[str, Any]
    tis: list[dict[str, Any]]
    sign_ins: int
    #: The sandbox's positions after the run.
    after: dict[str, dict[str, Any]] = field(default_factory=dict)

    def times(self) -> dict[str, float]:
        return {
            "queued_at to end_date": round(seconds_between(self.run["queued_at"], self.run["end_date"]), 1),
            "start_date to end_date": round(seconds_between(self.run["start_date"], self.run["end_date"]), 1),
        }


def _run(deployment: Deployment, dag_id: str, position_ids: tuple[str, ...]) -> Run:
    before = _sign_ins(deployment)
    run_id = deployment.trigger(dag_id, {"position_ids": list(position_ids)})
    run = deployment.wait_for_run(dag_id, run_id, timeout=LONG_RUN_TIMEOUT)
    return Run(
        run_id=run_id,
        run=run,
        tis=deployment.task_instances(dag_id, run_id),
        sign_ins=_sign_ins(deployment) - before,
        after=deployment.positions(),
    )


def _assert_success(deployment: Deployment, dag_id: str, run: Run) -> None:
    assert run.run["state"] == "success", (
        f"{dag_id} run {run.run_id} ended {run.run['state']}:\n{deployment.describe_run(dag_id, run.run_id)}"
    )


@pytest.fixture(scope="module")
def mapped_run(deployment: Deployment, figures: dict[str, Any]) -> Run:
    # A cold start: no token on file, as on fresh worker hosts; 200 task processes then start on
    # two workers of this host at once and must share one sign-in.
    for cached in (deployment.home / "jobmojito-token-cache").glob("*.json"):
        cached.unlink()
    run = _run(deployment, MAPPED_DAG, SCALE)
    deployment.timings[f"run {MAPPED_DAG} ({len(SCALE)} mapped)"] = run.times()["queued_at to end_date"]
    figures[f"time: {len(SCALE)} positions, mapped (s)"] = run.times()
    figures[f"spread: {len(SCALE)} mapped (task instances per worker)"] = _spread(
        [ti for ti in run.tis if ti["task_id"] == "activate"]
    )
    figures[f"sign-ins: {len(SCALE)} mapped"] = {
        "sandbox request log": run.sign_ins,
        "task logs, by worker": _sign_ins_by_host(deployment, run),
    }
    return run


def _sign_ins_by_host(deployment: Deployment, run: Run) -> dict[str, int]:
    """The ``Signed in`` lines of the run's task logs, by the host each task instance ran on."""
    counts: Counter[str] = Counter()
    for ti in run.tis:
        logs = deployment.task_log_files(MAPPED_DAG, run.run_id, ti["task_id"])
        mine = [p for p in logs if ti["map_index"] == -1 or f"/map_index={ti['map_index']}/" in str(p)]
        counts[str(ti["hostname"])] += sum(p.read_text(errors="replace").count(SIGNED_IN) for p in mine)
    return dict(sorted(counts.items()))


def test_200_mapped_positions_succeed_on_both_workers(deployment: Deployment, mapped_run: Run) -> None:
    _assert_success(deployment, MAPPED_DAG, mapped_run)
    activate = [ti for ti in mapped_run.tis if ti["task_id"] == "activate"]
    assert sorted(ti["rendered_map_index"] for ti in activate) == sorted(SCALE)
    assert {ti["state"] for ti in activate} == {"success"}
    assert set(_spread(activate)) == set(WORKERS)
    assert all(mapped_run.after[pid]["status"] == "active" for pid in SCALE)


def test_200_mapped_positions_sign_in_a_few_times_per_worker(mapped_run: Run) -> None:
    assert mapped_run.run["state"] == "success"
    # Both workers are on this host: the host-wide token cache makes it one sign-in for all.
    assert 1 <= mapped_run.sign_ins <= 2, f"{mapped_run.sign_ins} sign-ins for {len(SCALE)} task instances"


@pytest.fixture(scope="module")
def bulk_run(deployment: Deployment, mapped_run: Run, figures: dict[str, Any]) -> Run:
    run = _run(deployment, BULK_DAG, SCALE)
    deployment.timings[f"run {BULK_DAG} ({len(SCALE)} in one task)"] = run.times()["queued_at to end_date"]
    figures[f"time: {len(SCALE)} positions, one bulk task (s)"] = run.times()
    figures[f"sign-ins: {len(SCALE)} in one bulk task"] = run.sign_ins
    return run


def test_the_same_200_positions_in_one_bulk_task(deployment: Deployment, bulk_run: Run) -> None:
    _assert_success(deployment, BULK_DAG, bulk_run)
    assert [ti["task_id"] for ti in bulk_run.tis if ti["task_id"] == "archive"] == ["archive"]
    assert all(bulk_run.after[pid]["status"] == "archived" for pid in SCALE)


@dataclass
class KilledWorkerRun:
    run: Run
    victim: str
    killed_at: str
    #: The tries of each task instance the victim was running when killed, by map index.
    tries: dict[int, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def killed_worker_run(deployment: Deployment, bulk_run: Run, figures: dict[str, Any]) -> KilledWorkerRun:
    victim = WORKERS[-1]
    run_id = deployment.trigger(SLOW_DAG, {"position_ids": list(SLOW)})

    # Every slot of the victim busy: it then holds no task it has taken but not started (the
    # workers take one task per slot), whose instance would stay queued until task_queued_timeout.
    def victim_busy() -> list[dict[str, Any]] | None:
        deployment.check_alive()
        tis = deployment.task_instances(SLOW_DAG, run_id)
        running = [ti for ti in tis if ti["state"] == "running" and ti["hostname"] == victim]
        return running if len(running) >= WORKER_CONCURRENCY else None

    running: list[dict[str, Any]] = wait_for(f"{victim} to run {SLOW_DAG}'s tasks", victim_busy, 600, 1.0)
    killed_at = pendulum.now("UTC")
    started = time.monotonic()
    deployment.kill(victim)
    run = deployment.wait_for_run(SLOW_DAG, run_id, timeout=LONG_RUN_TIMEOUT)
    deployment.timings[f"run {SLOW_DAG}: kill to run end"] = time.monotonic() - started
    result = KilledWorkerRun(
        run=Run(
            run_id=run_id,
            run=run,
            tis=deployment.task_instances(SLOW_DAG, run_id),
            sign_ins=0,
            after=deployment.positions(),
        ),
        victim=victim,
        killed_at=killed_at.isoformat(),
        tries={
            ti["map_index"]: deployment.tries(SLOW_DAG, run_id, "activate", ti["map_index"]) for ti in running
        },
    )
    figures["killed worker"] = _timeline(result)
    return result


def _timeline(result: KilledWorkerRun) -> dict[str, Any]:
    """Seconds after the kill: when the killed tries were failed, the retries started and ended."""
    failed = [tries[0]["end_date"] for tries in result.tries.values() if tries and tries[0]["end_date"]]
    retries = [t for tries in result.tries.values() for t in tries[1:]]

    def after_kill(stamps: list[str], pick: Any) -> float | None:
        return round(seconds_between(result.killed_at, pick(stamps)), 1) if stamps else None

    return {
        "victim": result.victim,
        "task instances it was running": len(result.tries),
        "heartbeat timeout (s)": HEARTBEAT_TIMEOUT,
        "killed tries failed (s after kill, last)": after_kill(failed, max),
        "retries started (s after kill, first)": after_kill([t["start_date"] for t in retries], min),
        "retries ended (s after kill, last)": after_kill(
            [t["end_date"] for t in retries if t["end_date"]], max
        ),
        "run ended (s after kill)": round(seconds_between(result.killed_at, result.run.run["end_date"]), 1),
        "retries ran on": sorted({str(t["hostname"]) for t in retries}),
    }


def test_a_killed_workers_tasks_are_retried_on_the_other(
    deployment: Deployment, killed_worker_run: KilledWorkerRun
) -> None:
    result = killed_worker_run
    _assert_success(deployment, SLOW_DAG, result.run)
    survivors = [w for w in WORKERS if w != result.victim]
    for map_index, tries in result.tries.items():
        first, last = tries[0], tries[-1]
        assert first["hostname"] == result.victim, (map_index, tries)
        assert first["state"] in ("failed", "up_for_retry"), (map_index, tries)
        assert last["state"] == "success", (map_index, tries)
        assert last["hostname"] in survivors, (map_index, tries)
    # Task instances the victim never ran succeeded at once, on either worker.
    assert {ti["state"] for ti in result.run.tis} == {"success"}
    assert all(result.run.after[pid]["status"] == "active" for pid in SLOW)


test_no_secret_in_any_log = test_dag_runs.test_task_logs_have_each_call_and_no_secret


def test_a_deferrable_sensor_waits_in_the_triggerer_and_completes(deployment: Deployment) -> None:
    from tests.e2e.read_side import check_deferrable_sensor

    run = check_deferrable_sensor(deployment)
    deployment.timings["run jobmojito_e2e_wait (deferred)"] = seconds_between(
        run["start_date"], run["end_date"]
    )
