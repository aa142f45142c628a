"""Benchmarks of the JobMojito provider against the obvious alternatives; prints one table.

    make bench                  # or: .venv/bin/python -m benchmarks.run [--quick]

Benchmarks, not timed tests: nothing here asserts; the table says which targets were met.
Everything runs on loopback against :mod:`benchmarks.latency_server`, a JobMojito-shaped server
with a set latency, in a process of its own.

1. Per-call overhead: N sequential ``set_interview_state`` calls through the hook, against a bare
   ``requests.Session.post`` (the floor) and ``HttpHook.run`` (what a user would otherwise write).
   The three run in interleaved rounds, in rotating order; the figures are medians over rounds.
2. Bulk: 1,000 positions at 20 ms of server latency each, ``set_interview_states`` with 16
   workers against a sequential loop and the ideal (1,000 x 20 ms / 16); for reference, 16 threads
   sharing a ``requests.Session``, and 16 threads on a bare urllib3 pool (the floor of a threaded
   design on the machine at hand); and peak RSS of a 10,000-id bulk call, measured in a fresh
   process as the growth over the same process with everything imported and one call made.
3. Bulk embedding: 1,000 positions switched to ``is_embedded=True`` in one bulk call, at the same
   latency, against a status change of 1,000 positions: every answer carries a signing key, which
   must be registered with Airflow's secret masker. Afterwards every key must redact to ``***``.
   In this one process only: a real Airflow 3 worker's supervisor registers the keys one by one
   too, and costs far more (``tests/e2e/test_bulk_performance.py`` measures that).
4. DAG parse cost: what importing the operators module adds on top of
   ``from airflow.sdk import BaseOperator``, against ``airflow.providers.http.operators.http``,
   each in fresh processes; medians over runs.
5. Results export: ``InterviewResultsToStorageOperator`` writing 100,000 results to JSON Lines,
   the list answering pages of 1,000 after 100 ms, in a fresh process: list calls against
   ceil(100,000 / 1,000), wall time against calls x 100 ms, and peak RSS growth
   (``--results-only`` runs this one alone, then the same to Parquet).
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
SET_STATE = "/functions/v1/job-interview-set-state"
OPERATORS_MODULE = "airflow_provider_jobmojito.operators.jobmojito"
HOOK_MODULE = "airflow_provider_jobmojito.hooks.jobmojito"
HTTP_OPERATORS_MODULE = "airflow.providers.http.operators.http"
JOBMOJITO_CONN, HTTP_CONN = "jobmojito_bench", "http_bench"


# -- set-up ----------------------------------------------------------------------------------------


def airflow_env() -> dict[str, str]:
    """A private, quiet AIRFLOW_HOME, for this process and the ones it starts."""
    home = os.environ.get("BENCH_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="jobmojito-bench-home-")
    return {
        "BENCH_AIRFLOW_HOME": home,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(home) / "dags"),
    }


def fake_jwt(lifetime: int = 3600) -> str:
    """A JWT-shaped token with an ``exp`` claim (the hook reads it; the server accepts anything)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "bench", "exp": int(time.time()) + lifetime}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def define_connections(port: int, token: str) -> None:
    os.environ[f"AIRFLOW_CONN_{JOBMOJITO_CONN.upper()}"] = json.dumps(
        {"conn_type": "jobmojito", "host": f"http://127.0.0.1:{port}/functions/v1", "password": token}
    )
    os.environ[f"AIRFLOW_CONN_{HTTP_CONN.upper()}"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )


def quiet_logs() -> None:
    """Hide INFO lines (HttpHook logs one per call in a task; ours one per bulk call)."""
    import logging

    import airflow  # noqa: F401 - configures Airflow's logging, which is then quietened

    try:
        import structlog
    except ImportError:  # Airflow 2.11 logs through the standard library alone
        pass
    else:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger().setLevel(logging.WARNING)


@contextmanager
def latency_server(delay: float, status: int = 200, *, results: int = 0) -> Iterator[int]:
    """Start :mod:`benchmarks.latency_server` in its own process; yield its port."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "benchmarks.latency_server", "--delay", str(delay)),
            *("--status", str(status), "--results", str(results)),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the latency server did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_count(port: int, *, reset: bool = False) -> dict[str, int]:
    import requests

    if reset:
        requests.delete(f"http://127.0.0.1:{port}/_count", timeout=5)
        return {"count": 0, "distinct": 0}
    answer: dict[str, int] = requests.get(f"http://127.0.0.1:{port}/_count", timeout=5).json()
    return answer


def new_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


# -- 1. per-call overhead ----------------------------------------------------------------------


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median_wall(self) -> float:
        return statistics.median(self.wall)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def per_call_overhead(port: int, token: str, calls: int, rounds: int) -> dict[str, Timing]:
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    url = f"http://127.0.0.1:{port}{SET_STATE}"
    auth = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    hook = JobMojitoHook(JOBMOJITO_CONN)
    http = HttpHook(method="POST", http_conn_id=HTTP_CONN)

    def bare(ids: list[str]) -> None:
        for position_id in ids:
            response = session.post(
                url, json={"position_id": position_id, "status": "archived"}, headers=auth, timeout=30
            )
            response.raise_for_status()
            response.json()

    def ours(ids: list[str]) -> None:
        for position_id in ids:
            hook.set_interview_state(position_id, status="archived")

    def theirs(ids: list[str]) -> None:
        for position_id in ids:
            http.run(
                SET_STATE.lstrip("/"), json={"position_id": position_id, "status": "archived"}, headers=auth
            ).json()

    variants: dict[str, Callable[[list[str]], None]] = {
        "requests.Session.post": bare,
        "JobMojitoHook.set_interview_state": ours,
        "HttpHook.run": theirs,
    }
    for run in variants.values():  # warm up: connections, lazy imports, the connection lookup
        run(new_ids(50))
    timings = {name: Timing() for name in variants}
    names = list(variants)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            ids = new_ids(calls)
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            variants[name](ids)
            timings[name].wall.append((time.perf_counter() - started_wall) / calls)
            timings[name].cpu.append((time.process_time() - started_cpu) / calls)
    return timings


# -- 2. bulk ---------------------------------------------------------------------------------------


@dataclass
class BulkFigures:
    bulk: list[float]
    sequential: float
    requests_threads: list[float]
    urllib3_threads: list[float]
    counted: list[dict[str, int]]


def bulk(port: int, token: str, positions: int, workers: int, rounds: int) -> BulkFigures:
    import requests
    from requests.adapters import HTTPAdapter

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    figures = BulkFigures([], 0.0, [], [], [])
    for _ in range(rounds):
        ids = new_ids(positions)
        hook = JobMojitoHook(JOBMOJITO_CONN)  # a fresh hook, as each task gets: connections included
        server_count(port, reset=True)
        started = time.perf_counter()
        hook.set_interview_states(ids, status="archived", max_workers=workers)
        figures.bulk.append(time.perf_counter() - started)
        figures.counted.append(server_count(port))

    # For reference: the same threads through one shared requests.Session (pool sized to fit).
    url = f"http://127.0.0.1:{port}{SET_STATE}"
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(rounds):
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=workers))
        ids = new_ids(positions)

        def post(position_id: str, session: requests.Session = session) -> None:
            body = {"position_id": position_id, "status": "archived"}
            session.post(url, json=body, headers=auth, timeout=30).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as executor:
            list(executor.map(post, ids))
        figures.requests_threads.append(time.perf_counter() - started)

    # For reference: the floor of this design, the same threads on a bare urllib3 pool.
    import urllib3

    headers = {**auth, "Content-Type": "application/json"}
    for _ in range(rounds):
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=workers)
        ids = new_ids(positions)

        def send(position_id: str, pool: urllib3.HTTPConnectionPool = pool) -> None:
            body = json.dumps({"position_id": position_id, "status": "archived"}).encode()
            response = pool.urlopen("POST", SET_STATE, body=body, headers=headers, retries=False)
            json.loads(response.data)

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as executor:
            list(executor.map(send, ids))
        figures.urllib3_threads.append(time.perf_counter() - started)
        pool.close()

    hook = JobMojitoHook(JOBMOJITO_CONN)
    started = time.perf_counter()
    for position_id in new_ids(positions):
        hook.set_interview_state(position_id, status="archived")
    figures.sequential = time.perf_counter() - started
    return figures


@dataclass
class EmbedFigures:
    status: list[float] = field(default_factory=list)
    embedded: list[float] = field(default_factory=list)
    #: Per round: every signing key of the embedding call was distinct and redacts to ``***``.
    masked: list[bool] = field(default_factory=list)


def embed_bulk(positions: int, workers: int, rounds: int) -> EmbedFigures:
    """Interleaved rounds: a status change of ``positions`` ids, then embedding switched on for as many."""
    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    figures = EmbedFigures()
    for _ in range(rounds):
        hook = JobMojitoHook(JOBMOJITO_CONN)
        ids = new_ids(positions)
        started = time.perf_counter()
        hook.set_interview_states(ids, status="archived", max_workers=workers)
        figures.status.append(time.perf_counter() - started)

        hook = JobMojitoHook(JOBMOJITO_CONN)
        ids = new_ids(positions)
        started = time.perf_counter()
        results = hook.set_interview_states(ids, is_embedded=True, max_workers=workers)
        figures.embedded.append(time.perf_counter() - started)
        keys = [result.response["embed_signing_key"] for result in results if result.response]
        figures.masked.append(len(set(keys)) == positions and all(redact(key) == "***" for key in keys))
    return figures


@dataclass
class BreakerFigures:
    positions: int
    #: (requests the API received, seconds) for the bulk call with the breaker, and without it.
    with_breaker: tuple[int, float]
    without_breaker: tuple[int, float]


def down_api_bulk(positions: int, workers: int) -> BreakerFigures:
    """A bulk call against an API that answers 503 to everything: with the breaker, and without."""
    from airflow_provider_jobmojito.exceptions import JobMojitoBulkError
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    figures = []
    with latency_server(0.0, status=503) as port:
        define_connections(port, fake_jwt())
        for failures_in_a_row in (None, 0):
            # Short backoff, so that the run without the breaker takes seconds, not minutes.
            hook = JobMojitoHook(JOBMOJITO_CONN, backoff_factor=0.02, backoff_max=0.2)
            server_count(port, reset=True)
            started = time.perf_counter()
            try:
                hook.set_interview_states(
                    new_ids(positions),
                    status="active",
                    max_workers=workers,
                    failures_in_a_row=failures_in_a_row,
                )
            except JobMojitoBulkError:
                pass
            else:  # pragma: no cover - the server fails every call
                raise RuntimeError("a bulk call against a down API succeeded")
            figures.append((server_count(port)["count"], time.perf_counter() - started))
    return BreakerFigures(positions, figures[0], figures[1])


@dataclass
class TriggerFigures:
    triggers: int
    rounds: int
    list_calls: int
    get_calls: int
    rss_growth_kb: int
    fired: int


def _vm_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def deferred_triggers(count: int, interval: float) -> TriggerFigures:
    """``count`` InterviewStateTriggers waiting in one event loop, as in a triggerer, against the
    sandbox: API calls per poll interval and memory, then every position completes."""
    import asyncio

    from airflow_provider_jobmojito.sandbox import SandboxServer
    from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateTrigger

    with SandboxServer() as sandbox:
        ids = new_ids(count)
        sandbox.seed([{"id": position_id, "status": "active"} for position_id in ids])
        os.environ["AIRFLOW_CONN_JOBMOJITO_DEFAULT"] = json.dumps(
            {"conn_type": "jobmojito", "host": sandbox.api_url, "password": sandbox.issue_token()}
        )

        def calls(path: str) -> int:
            return sum(1 for r in sandbox.requests_log() if r["path"] == f"/functions/v1/{path}")

        async def first_event(trigger: InterviewStateTrigger) -> str:
            async for event in trigger.run():
                return str(event.payload["outcome"])
            return "none"

        async def main() -> tuple[int, int, int, int, list[str]]:
            before = _vm_rss_kb()
            waiting = [
                asyncio.ensure_future(
                    first_event(
                        InterviewStateTrigger(position_id=pid, status=["completed"], poll_interval=interval)
                    )
                )
                for pid in ids
            ]
            rounds = 5
            await asyncio.sleep(interval * (rounds - 0.5))  # the first round is at once
            lists, gets, grown = (
                calls("merchant-interview-list"),
                calls("job-interview-get"),
                _vm_rss_kb() - before,
            )
            for pid in ids:
                sandbox.admin_set_status(pid, "completed")
            return rounds, lists, gets, grown, list(await asyncio.gather(*waiting))

        rounds, lists, gets, grown, outcomes = asyncio.run(main())
    return TriggerFigures(count, rounds, lists, gets, grown, outcomes.count("success"))


def peak_rss_probe(port: int, ids: int, workers: int) -> dict[str, Any]:
    """In a fresh process: peak RSS of one bulk call over the same process before it."""
    env = {**os.environ, **airflow_env()}
    command = [sys.executable, "-m", "benchmarks.run", "--rss-probe", str(port), str(ids), str(workers)]
    output = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def _rss_probe_main(port: int, ids_count: int, workers: int) -> None:
    quiet_logs()
    define_connections(port, fake_jwt())
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    hook = JobMojitoHook(JOBMOJITO_CONN)
    hook.set_interview_state(str(uuid.uuid4()), status="archived")  # everything imported and warm
    ids = new_ids(ids_count)  # the input exists before the call: it is not the call's memory
    import gc

    gc.collect()
    baseline_kb, source = _peak_rss_kb()
    results = hook.set_interview_states(ids, status="archived", max_workers=workers)
    peak_kb, _ = _peak_rss_kb()
    assert len(results) == ids_count
    print(json.dumps({"baseline_kb": baseline_kb, "peak_kb": peak_kb, "ids": ids_count, "source": source}))


def _peak_rss_kb() -> tuple[int, str]:
    """The process's peak RSS so far, in KiB.

    Linux's VmHWM, when there is one: ``getrusage``'s ``ru_maxrss`` also counts the memory of the
    parent this process was forked from, before it exec'd, so a probe started by a big benchmark
    process would report the parent's size as its own baseline.
    """
    hwm = _vm_kb("VmHWM")
    if hwm is not None:
        return hwm, "VmHWM"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"


def _vm_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# -- 5. Results export -------------------------------------------------------------------------

#: Results exported, list latency, and the rows per list call.
EXPORT_RESULTS = 100_000
EXPORT_LATENCY = 0.100
EXPORT_PAGE = 1000


@dataclass
class ExportFigures:
    results: int
    exported: int
    list_calls: int
    wall: float
    cpu: float
    baseline_kb: int
    peak_kb: int
    format: str = "jsonl"

    @property
    def ideal_calls(self) -> int:
        return -(-self.results // EXPORT_PAGE)

    @property
    def ideal_wall(self) -> float:
        return self.ideal_calls * EXPORT_LATENCY


def results_export(results: int = EXPORT_RESULTS, format: str = "jsonl") -> ExportFigures:
    """``InterviewResultsToStorageOperator`` exporting ``results`` results (pages of 1,000 at 100 ms
    each) to a local folder, in a fresh process: list calls, wall time, RSS growth."""
    with latency_server(EXPORT_LATENCY, results=results) as port:
        env = {**os.environ, **airflow_env()}
        command = [sys.executable, "-m", "benchmarks.run", "--export-probe", str(port), str(results)]
        command += ["--export-format", format]
        output = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
        probe: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
        lists = server_count(port)["lists"]
    return ExportFigures(
        results,
        probe["count"],
        lists,
        probe["wall"],
        probe["cpu"],
        probe["baseline_kb"],
        probe["peak_kb"],
        format,
    )


def _export_probe_main(port: int, results: int, format: str = "jsonl") -> None:
    quiet_logs()
    define_connections(port, fake_jwt())
    from datetime import UTC, datetime, timedelta

    import benchmarks.latency_server as server
    from airflow_provider_jobmojito.operators.results import InterviewResultsToStorageOperator

    start = datetime.fromtimestamp(server.RESULTS_EPOCH, UTC)
    with tempfile.TemporaryDirectory() as folder:
        operator = InterviewResultsToStorageOperator(
            task_id="export",
            jobmojito_conn_id=JOBMOJITO_CONN,
            destination=folder,
            updated_after=start,
            updated_before=start + timedelta(seconds=results + 1),
            format=format,
        )
        import gc

        if format == "parquet":
            # Importing pyarrow alone adds some 70 MB, whatever the rows: the baseline holds it, so
            # the growth is what the rows cost (see docs/performance.md).
            import pyarrow.parquet  # noqa: F401

        gc.collect()
        baseline_kb, _ = _peak_rss_kb()
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = operator.execute({})
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        peak_kb, _ = _peak_rss_kb()
    print(
        json.dumps(
            {
                "count": outcome["count"],
                "wall": wall,
                "cpu": cpu,
                "baseline_kb": baseline_kb,
                "peak_kb": peak_kb,
            }
        )
    )


def export_rows(e: ExportFigures) -> list[tuple[str, str, str, str]]:
    calls_ratio = e.list_calls / e.ideal_calls
    wall_ratio = e.wall / e.ideal_wall
    growth_mb = (e.peak_kb - e.baseline_kb) / 1024
    return [
        (
            "Results export: what",
            f"{e.results:,} results to {'Parquet' if e.format == 'parquet' else 'JSON Lines'}",
            "",
            "",
        ),
        (
            "  list calls",
            f"{e.list_calls} for {e.exported:,} rows",
            f"<= 1.05 x {e.ideal_calls} (ceil(n / 1,000))",
            f"{calls_ratio:.3f} x, {verdict(calls_ratio <= 1.05 and e.exported == e.results)}",
        ),
        (
            "  wall time",
            f"{e.wall:.2f} s",
            f"<= 1.3 x {e.ideal_wall:.1f} s (calls x 100 ms)",
            f"{wall_ratio:.2f} x, {verdict(wall_ratio <= 1.3)}",
        ),
        ("  CPU per list call", f"{e.cpu / e.list_calls * 1000:.0f} ms", "(reading and writing)", ""),
        (
            "  peak RSS growth",
            f"{growth_mb:.1f} MB",
            "< 64 MB" + (" (pyarrow imported before)" if e.format == "parquet" else ""),
            verdict(growth_mb < 64),
        ),
    ]


# -- 4. DAG parse cost -------------------------------------------------------------------------

_IMPORT_SNIPPET = """
import json, sys, time
started = time.perf_counter()
from airflow.sdk import BaseOperator
based = time.perf_counter()
import {module}
done = time.perf_counter()
print(json.dumps({{"base": based - started, "added": done - based, "requests": "requests" in sys.modules}}))
"""


def import_cost(module: str) -> dict[str, Any]:
    env = {**os.environ, **airflow_env()}
    command = [sys.executable, "-c", _IMPORT_SNIPPET.format(module=module)]
    output = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def parse_cost(runs: int) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    ours_module = OPERATORS_MODULE if importlib.util.find_spec(OPERATORS_MODULE) else HOOK_MODULE
    import_cost(ours_module)  # a first run writes airflow.cfg and warms the disk cache
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(runs):  # interleaved, so a busy moment hits both
        ours.append(import_cost(ours_module))
        theirs.append(import_cost(HTTP_OPERATORS_MODULE))
    return ours_module, ours, theirs


# -- the table -------------------------------------------------------------------------------------


def machine() -> list[str]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    def version(name: str) -> str:
        try:
            return installed(name)
        except PackageNotFoundError:
            return "not installed"

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"machine: {os.cpu_count()} CPU(s), {model}; {platform.system()} {platform.release()}; "
        f"load average at start {load}",
        f"software: Python {platform.python_version()}, Airflow {version('apache-airflow')}, "
        f"requests {version('requests')}, urllib3 {version('urllib3')}, "
        f"apache-airflow-providers-http {version('apache-airflow-providers-http')}",
    ]


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


@dataclass
class Settings:
    calls: int
    rounds: int
    bulk_rounds: int
    parse_runs: int
    positions: int = 1000
    latency: float = 0.020
    workers: int = 16
    rss_ids: int = 10_000


@dataclass
class Measured:
    timings: dict[str, Timing]
    rss: dict[str, Any]
    bulk: BulkFigures
    embed: EmbedFigures
    breaker: BreakerFigures
    triggers: TriggerFigures
    export: ExportFigures
    ours_module: str
    ours_imports: list[dict[str, Any]]
    their_imports: list[dict[str, Any]]
    elapsed: float


def measure(settings: Settings) -> Measured:
    quiet_logs()
    token = fake_jwt()
    started = time.monotonic()
    print("Running (about two minutes): per-call overhead...", file=sys.stderr, flush=True)
    with latency_server(0.0) as port:
        define_connections(port, token)
        timings = per_call_overhead(port, token, settings.calls, settings.rounds)
        print("...peak RSS of 10,000 ids...", file=sys.stderr, flush=True)
        rss = peak_rss_probe(port, settings.rss_ids, settings.workers)
    print("...bulk at 20 ms per call...", file=sys.stderr, flush=True)
    with latency_server(settings.latency) as port:
        define_connections(port, token)
        figures = bulk(port, token, settings.positions, settings.workers, settings.bulk_rounds)
        print("...bulk embedding...", file=sys.stderr, flush=True)
        embed = embed_bulk(settings.positions, settings.workers, settings.bulk_rounds)
    print("...bulk against a down API...", file=sys.stderr, flush=True)
    breaker = down_api_bulk(320, settings.workers)
    print("...1,000 deferred sensors in one event loop...", file=sys.stderr, flush=True)
    triggers = deferred_triggers(1000, 1.0)
    print("...exporting 100,000 results at 100 ms a page...", file=sys.stderr, flush=True)
    export = results_export()
    print("...DAG parse cost...", file=sys.stderr, flush=True)
    ours_module, ours_imports, their_imports = parse_cost(settings.parse_runs)
    return Measured(
        timings,
        rss,
        figures,
        embed,
        breaker,
        triggers,
        export,
        ours_module,
        ours_imports,
        their_imports,
        time.monotonic() - started,
    )


def measure_embed_only(settings: Settings) -> EmbedFigures:
    """Section 3 alone (``--embed-only``): it needs neither the HTTP provider nor structlog."""
    token = fake_jwt()
    with latency_server(settings.latency) as port:
        define_connections(port, token)
        return embed_bulk(settings.positions, settings.workers, settings.bulk_rounds)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def table_rows(s: Settings, m: Measured) -> list[tuple[str, str, str, str]]:
    bare = m.timings["requests.Session.post"]
    hook = m.timings["JobMojitoHook.set_interview_state"]
    http = m.timings["HttpHook.run"]
    hook_vs_bare = hook.median_wall() / bare.median_wall()
    http_vs_hook = http.median_wall() / hook.median_wall()
    ideal = s.positions * s.latency / s.workers
    bulk_median = statistics.median(m.bulk.bulk)
    requests_median = statistics.median(m.bulk.requests_threads)
    urllib3_median = statistics.median(m.bulk.urllib3_threads)
    ours_added = statistics.median(run["added"] for run in m.ours_imports)
    theirs_added = statistics.median(run["added"] for run in m.their_imports)
    base = statistics.median(run["base"] for run in m.ours_imports + m.their_imports)
    grown_kb = m.rss["peak_kb"] - m.rss["baseline_kb"]
    ms = s.latency * 1000
    return [
        ("1. per call, sequential, no server latency", "", "", ""),
        (
            f"   requests.Session.post (floor), {s.calls} calls x {s.rounds} rounds",
            f"{us(bare.median_wall())} (CPU {us(bare.median_cpu())})",
            "",
            "",
        ),
        (
            "   JobMojitoHook.set_interview_state",
            f"{us(hook.median_wall())} (CPU {us(hook.median_cpu())})",
            "",
            "",
        ),
        ("   HttpHook.run", f"{us(http.median_wall())} (CPU {us(http.median_cpu())})", "", ""),
        ("   hook / bare requests", f"{hook_vs_bare:.2f}x", "<= 1.10x", verdict(hook_vs_bare <= 1.10)),
        ("   HttpHook / hook", f"{http_vs_hook:.2f}x", "> 1x (hook faster)", verdict(http_vs_hook > 1)),
        (f"2. bulk: {s.positions:,} positions, {ms:.0f} ms server latency each", "", "", ""),
        (f"   ideal ({s.positions:,} x {ms:.0f} ms / {s.workers})", f"{ideal:.2f} s", "", ""),
        (
            f"   set_interview_states, {s.workers} workers (median of {s.bulk_rounds})",
            f"{bulk_median:.2f} s = {bulk_median / ideal:.2f}x ideal",
            "<= 1.30x ideal",
            verdict(bulk_median / ideal <= 1.30),
        ),
        (
            "   sequential set_interview_state loop",
            f"{m.bulk.sequential:.2f} s = {m.bulk.sequential / bulk_median:.1f}x bulk",
            ">= 10x bulk",
            verdict(m.bulk.sequential / bulk_median >= 10),
        ),
        (
            f"   (reference) {s.workers} threads sharing a requests.Session",
            f"{requests_median:.2f} s = {requests_median / ideal:.2f}x ideal",
            "",
            "",
        ),
        (
            f"   (reference) {s.workers} threads on a bare urllib3 pool",
            f"{urllib3_median:.2f} s = {urllib3_median / ideal:.2f}x ideal",
            "",
            "",
        ),
        (
            f"   peak RSS of one bulk call of {s.rss_ids:,} ids",
            f"+{grown_kb / 1024:.1f} MB over {m.rss['baseline_kb'] / 1024:.0f} MB "
            f"({grown_kb * 1024 / s.rss_ids:,.0f} B per id)",
            "",
            "",
        ),
        *embed_rows(s, m.embed),
        ("4. DAG parse cost: import added on top of airflow.sdk.BaseOperator", "", "", ""),
        (
            f"   (baseline) from airflow.sdk import BaseOperator (median of {s.parse_runs})",
            f"{base * 1000:.0f} ms",
            "",
            "",
        ),
        (f"   {m.ours_module}", f"+{ours_added * 1000:.1f} ms", "", ""),
        (f"   {HTTP_OPERATORS_MODULE}", f"+{theirs_added * 1000:.1f} ms", "", ""),
        (
            "   ours / theirs",
            f"{ours_added / theirs_added:.2f}",
            "<= 0.33",
            verdict(ours_added <= theirs_added / 3),
        ),
    ]


def embed_rows(s: Settings, embed: EmbedFigures) -> list[tuple[str, str, str, str]]:
    status_median = statistics.median(embed.status)
    embedded_median = statistics.median(embed.embedded)
    ratio = embedded_median / status_median
    rounds = len(embed.embedded)
    masked = sum(embed.masked)
    return [
        (
            f"3. bulk embedding: {s.positions:,} positions, {s.latency * 1000:.0f} ms latency, "
            f"{s.workers} workers (medians of {rounds})",
            "",
            "",
            "",
        ),
        ("   set_interview_states(status=...)", f"{status_median:.2f} s", "", ""),
        ("   set_interview_states(is_embedded=True)", f"{embedded_median:.2f} s", "", ""),
        # In this process only: a worker's supervisor adds a compile per key (docs/performance.md).
        (
            "   embedding / status change, in-process (not a worker)",
            f"{ratio:.2f}x",
            "<= 1.50x",
            verdict(ratio <= 1.5),
        ),
        (
            "   every signing key redacts to ***",
            f"{masked} of {rounds} round(s)",
            "all",
            verdict(masked == rounds),
        ),
    ]


def breaker_rows(b: BreakerFigures) -> list[tuple[str, str, str, str]]:
    (sent_with, time_with), (sent_without, time_without) = b.with_breaker, b.without_breaker
    return [
        (f"5. bulk against a down API: {b.positions} positions, every call 503, 16 workers", "", "", ""),
        (
            "   breaker on (default: 32 failures in a row)",
            f"{sent_with:,} requests, {time_with:.2f} s",
            "",
            "",
        ),
        ("   breaker off (failures_in_a_row=0)", f"{sent_without:,} requests, {time_without:.2f} s", "", ""),
        (
            "   requests sent, on / off",
            f"{sent_with / sent_without:.3f}",
            "< 0.05",
            verdict(sent_with / sent_without < 0.05),
        ),
    ]


def trigger_rows(t: TriggerFigures) -> list[tuple[str, str, str, str]]:
    per_round = (t.list_calls + t.get_calls) / t.rounds
    return [
        (
            f"6. {t.triggers:,} deferred InterviewStateTriggers in one event loop, against the sandbox",
            "",
            "",
            "",
        ),
        (
            f"   API calls per poll interval ({t.rounds} intervals)",
            f"{per_round:.1f} ({t.list_calls} list, {t.get_calls} get in all)",
            "<= 2",
            verdict(per_round <= 2),
        ),
        ("   (reference) one get per sensor per interval", f"{t.triggers:,}", "", ""),
        (
            "   memory of the waiting triggers (RSS growth)",
            f"+{t.rss_growth_kb / 1024:.1f} MB ({t.rss_growth_kb * 1024 / t.triggers:,.0f} B each)",
            "",
            "",
        ),
        (
            "   fired once every position completed",
            f"{t.fired:,} of {t.triggers:,}",
            "all",
            verdict(t.fired == t.triggers),
        ),
    ]


def notes(s: Settings, m: Measured) -> list[str]:
    complete = all(c == {"count": s.positions, "distinct": s.positions} for c in m.bulk.counted)

    def imports_requests(runs: list[dict[str, Any]]) -> str:
        return "yes" if any(run["requests"] for run in runs) else "no"

    return [
        f"server: benchmarks/latency_server.py in its own process, on 127.0.0.1; ran in {m.elapsed:.0f} s",
        "per call: medians over interleaved rounds (rotating order); wall time per call, and this "
        "process's CPU",
        "HttpHook.run builds a new Session (and TCP connection) and reads the connection on every call",
        f"bulk: every run reached the server exactly {s.positions:,} times with {s.positions:,} distinct ids"
        if complete
        else f"bulk: WARNING: the server counted {m.bulk.counted}",
        f"peak RSS ({m.rss['source']}): a fresh process that imported everything and made one call, then "
        f"one set_interview_states call of {s.rss_ids:,} ids, {s.workers} workers, no server latency",
        f"parse: fresh processes, medians; imports requests: {m.ours_module} "
        f"{imports_requests(m.ours_imports)}, {HTTP_OPERATORS_MODULE} {imports_requests(m.their_imports)}",
        "reproduce: make bench   (or: .venv/bin/python -m benchmarks.run)",
    ]


def render(rows: list[tuple[str, str, str, str]]) -> list[str]:
    headings = ("benchmark", "measured", "target", "")
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(4)]

    def fmt(row: tuple[str, ...]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()

    return [fmt(headings), "-+-".join("-" * width for width in widths), *map(fmt, rows)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (a smoke run)")
    parser.add_argument("--rss-probe", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--export-probe", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--export-format", default="jsonl", help=argparse.SUPPRESS)
    parser.add_argument(
        "--results-only", action="store_true", help="only the results export benchmark (section 5)"
    )
    parser.add_argument(
        "--embed-only", action="store_true", help="only the bulk embedding benchmark (runs on Airflow 2.11)"
    )
    parser.add_argument("--positions", type=int, default=1000, help="positions per bulk call (default 1000)")
    parser.add_argument(
        "--reconcile-only", action="store_true", help="only the positions-as-code benchmark (section 6)"
    )
    args = parser.parse_args(argv)
    os.environ.update(airflow_env())
    if args.rss_probe:
        _rss_probe_main(*args.rss_probe)
        return
    if args.export_probe:
        _export_probe_main(*args.export_probe, format=args.export_format)
        return
    if args.results_only:
        started = time.monotonic()
        print("\n".join(render(export_rows(results_export()))))
        print("\n".join(render(export_rows(results_export(format="parquet")))))
        print()
        print("\n".join(machine()))
        print(
            f"ran in {time.monotonic() - started:.0f} s; reproduce: python -m benchmarks.run --results-only"
        )
        return
    if args.quick:
        settings = Settings(calls=300, rounds=3, bulk_rounds=2, parse_runs=3, positions=args.positions)
    else:
        settings = Settings(calls=1000, rounds=7, bulk_rounds=3, parse_runs=7, positions=args.positions)
    header = machine()
    if args.reconcile_only:
        quiet_logs()
        started = time.monotonic()
        print_reconcile(rounds=2 if args.quick else 3)
        print("\n".join(header))
        print(
            f"ran in {time.monotonic() - started:.0f} s; reproduce: python -m benchmarks.run --reconcile-only"
        )
        return
    if args.embed_only:
        quiet_logs()
        started = time.monotonic()
        embed = measure_embed_only(settings)
        print()
        print("\n".join(render(embed_rows(settings, embed))))
        print()
        print("\n".join(header))
        print(f"ran in {time.monotonic() - started:.0f} s; reproduce: python -m benchmarks.run --embed-only")
        return
    measured = measure(settings)
    print()
    rows = table_rows(settings, measured) + breaker_rows(measured.breaker) + trigger_rows(measured.triggers)
    rows += export_rows(measured.export)
    print("\n".join(render(rows)))
    print()
    print("\n".join(header + notes(settings, measured)))
    print_reconcile(rounds=2 if args.quick else 3)


def print_reconcile(rounds: int) -> None:
    """Section 6, positions as code (:mod:`benchmarks.reconcile`), as a table of its own."""
    from benchmarks.reconcile import measure_reconcile, reconcile_rows

    print("...positions as code: 10,000 positions...", file=sys.stderr, flush=True)
    figures = measure_reconcile(rounds=rounds)
    print()
    print("\n".join(render(reconcile_rows(figures))))
    print()


if __name__ == "__main__":
    main()
