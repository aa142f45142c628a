"""Positions as code at scale (issue 18), against the sandbox in a process of its own.

    python -m benchmarks.run --reconcile-only     # this section alone; make bench runs it last

1. Planning 10,000 positions: list calls (target ``ceil(10,000 / 1,000)`` + at most 1), per-position
   reads (target 0), and the CPU of the diff itself (``index_live`` + ``plan``, target < 1 s).
2. Applying an approved plan of 500 changes among 10,000: set-state calls (exactly 500), list calls
   of the re-read (at most ``ceil(10,000 / 1,000)``), and its wall time against the floor of the
   same work done by hand, ``set_interview_states`` of the 500 ids plus one listing of every page
   (target <= 1.2x). The two run in interleaved rounds; the ratio is the median's.
3. A second run with no drift: 0 writes.

Counts come from the sandbox's request log; nothing here asserts, the table says what was met.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

CONN_ID = "jobmojito_reconcile_bench"
SET_STATE = "/functions/v1/job-interview-set-state"
LIST = "/functions/v1/merchant-interview-list"
GET = "/functions/v1/job-interview-get"


def position_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


@contextmanager
def sandbox(positions: int) -> Iterator[str]:
    """The sandbox in its own process (its CPU is not this one's), seeded with ``positions``
    active positions; yields its base URL."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as seed:
        json.dump({"positions": seed_rows(range(1, positions + 1), "active")}, seed)
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_jobmojito.sandbox", "--port", "0", "--seed", seed.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.unlink(seed.name)


def seed_rows(numbers: range | list[int], status: str) -> list[dict[str, Any]]:
    return [{"id": position_id(n), "name": f"Position {n}", "status": status} for n in numbers]


class Control:
    """The sandbox's control API, over HTTP."""

    def __init__(self, base_url: str) -> None:
        import requests

        self.session = requests.Session()
        self.base_url = base_url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.session.request(method, f"{self.base_url}/_sandbox/{path}", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def count(self, path: str) -> int:
        return sum(1 for entry in self.call("GET", "requests")["requests"] if entry["path"] == path)

    def clear(self) -> None:
        self.call("DELETE", "requests")


@dataclass
class ReconcileFigures:
    positions: int
    changes: int
    plan_lists: int = 0
    plan_gets: int = 0
    diff_cpu: list[float] = field(default_factory=list)
    plan_changes: int = 0
    apply_writes: list[int] = field(default_factory=list)
    apply_lists: list[int] = field(default_factory=list)
    apply_wall: list[float] = field(default_factory=list)
    floor_wall: list[float] = field(default_factory=list)
    second_writes: int = -1
    second_lists: int = 0


def measure_reconcile(positions: int = 10_000, changes: int = 500, rounds: int = 3) -> ReconcileFigures:
    from airflow_provider_jobmojito import reconcile
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
    from airflow_provider_jobmojito.operators.positions_as_code import ReconcilePositionsOperator

    _quieter()
    figures = ReconcileFigures(positions, changes)
    closing = list(range(1, changes + 1))  # these go from active to archived
    desired = {position_id(n): "active" for n in range(1, positions + 1)}
    desired.update({position_id(n): "archived" for n in closing})
    with sandbox(positions) as base_url:
        control = Control(base_url)
        token = control.call("POST", "tokens", {"lifetime": 7200})["access_token"]
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "jobmojito", "host": f"{base_url}/functions/v1", "password": token}
        )

        def operator(**kwargs: Any) -> ReconcilePositionsOperator:
            return ReconcilePositionsOperator(task_id="reconcile", jobmojito_conn_id=CONN_ID, **kwargs)

        # 1. planning: the listing's calls, and the diff's CPU over the rows it gave.
        control.clear()
        the_plan = operator(desired=desired, dry_run=True).execute({})  # type: ignore[arg-type]
        figures.plan_lists, figures.plan_gets = control.count(LIST), control.count(GET)
        figures.plan_changes = len(the_plan["changes"])
        hook = JobMojitoHook(CONN_ID)
        rows = [row for page in hook.iter_interview_pages() for row in page["data"]]
        wanted = reconcile.parse_desired(desired)
        for _ in range(rounds):
            started = time.process_time()
            reconcile.plan(wanted, reconcile.index_live(rows))
            figures.diff_cpu.append(time.process_time() - started)

        # 2. apply an approved plan, against the floor; interleaved rounds, each from the same state.
        for _ in range(rounds):
            control.call("POST", "positions", seed_rows(closing, "active"))
            started = time.perf_counter()
            hook.set_interview_states([position_id(n) for n in closing], status="archived")
            sum(1 for _ in hook.iter_interview_pages())
            figures.floor_wall.append(time.perf_counter() - started)

            control.call("POST", "positions", seed_rows(closing, "active"))
            approved = operator(desired=desired, dry_run=True).execute({})  # type: ignore[arg-type]
            control.clear()
            started = time.perf_counter()
            applied = operator(approved_plan=approved).execute({})  # type: ignore[arg-type]
            figures.apply_wall.append(time.perf_counter() - started)
            figures.apply_writes.append(control.count(SET_STATE))
            figures.apply_lists.append(control.count(LIST))
            assert applied["applied"] == changes, applied["skipped"][:3]

        # 3. nothing changed since: a second run writes nothing.
        control.clear()
        operator(desired=desired).execute({})  # type: ignore[arg-type]
        figures.second_writes, figures.second_lists = control.count(SET_STATE), control.count(LIST)
    return figures


def _quieter() -> None:
    """ERROR lines only: calling ``execute`` outside a task runner, as a benchmark does, makes
    Airflow 3 warn once a call."""
    import logging

    try:
        import structlog
    except ImportError:  # Airflow 2.11 logs through the standard library alone
        pass
    else:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.getLogger().setLevel(logging.ERROR)


def reconcile_rows(f: ReconcileFigures) -> list[tuple[str, str, str, str]]:
    from benchmarks.run import verdict

    pages = math.ceil(f.positions / 1000)
    cpu = statistics.median(f.diff_cpu)
    apply_wall = statistics.median(f.apply_wall)
    floor_wall = statistics.median(f.floor_wall)
    ratio = apply_wall / floor_wall
    rounds = len(f.apply_wall)
    return [
        (f"6. positions as code: {f.positions:,} positions, sandbox in its own process", "", "", ""),
        (
            f"   plan: list calls ({f.plan_changes:,} changes planned)",
            f"{f.plan_lists}",
            f"<= {pages + 1}",
            verdict(f.plan_lists <= pages + 1),
        ),
        ("   plan: per-position reads (GET)", f"{f.plan_gets}", "0", verdict(f.plan_gets == 0)),
        (
            f"   plan: CPU of the diff (median of {len(f.diff_cpu)})",
            f"{cpu * 1000:.0f} ms",
            "< 1 s",
            verdict(cpu < 1.0),
        ),
        (
            f"   apply {f.changes} approved changes: set-state calls",
            ", ".join(map(str, f.apply_writes)),
            f"{f.changes} each",
            verdict(all(w == f.changes for w in f.apply_writes)),
        ),
        (
            "   apply: list calls of the re-read",
            ", ".join(map(str, f.apply_lists)),
            f"<= {pages}",
            verdict(all(n <= pages for n in f.apply_lists)),
        ),
        (
            f"   apply / (set_interview_states of {f.changes} + one listing) (median of {rounds})",
            f"{apply_wall:.2f} s / {floor_wall:.2f} s = {ratio:.2f}x",
            "<= 1.20x",
            verdict(ratio <= 1.20),
        ),
        (
            "   second run, no drift: set-state calls",
            f"{f.second_writes} ({f.second_lists} list calls)",
            "0",
            verdict(f.second_writes == 0),
        ),
    ]
