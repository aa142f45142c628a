"""What the bulk performance end-to-end tests measure and check, on any deployment profile.

:func:`measure` runs three DAGs one after the other (never together, so that they do not share the
CPUs), each on :data:`POSITIONS` new positions: a bulk status change and embedding switched on in
one task (``tests/e2e/dags/jobmojito_e2e_bulk.py``), then embedding switched on by
``example_dags/jobmojito_embed_in_batches.py``, in mapped tasks of its default batch size. Each
task's duration, as Airflow recorded it, each bulk call's logged masking time and the ratios go to
``performance.json`` in the profile's output folder and to the end-of-run summary: the figures of
``docs/performance.md`` come from there.

Nothing here asserts a duration (the machine may be loaded). What the checks assert: every
position was changed, and no signing key reached any file the deployment logged to. (The DAGs do
not log the keys on purpose to show them masked: Airflow 3.3.2's LocalExecutor copies each task's
log lines to the scheduler's output, where a key a task logged was shown unmasked, though masked in
the task's log file.)
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
import sys
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tests.e2e.deployment import Deployment, seconds_between

#: Positions per DAG run: 500 keys cost the supervisor about ten seconds on a 2-CPU machine (it grows
#: with the square of the count), affordable in every e2e run.
POSITIONS = 500
RUN_TIMEOUT = 900.0
#: Positions of the run made before measuring: the first task of a fresh deployment is slower
#: (8.7 s of 9.8 s before its DAG bundle was loaded, once), which is no cost of the bulk call.
WARM_UP_POSITIONS = 10
#: The bulk call's own summary line (``airflow_provider_jobmojito/bulk.py``).
MASKING_LOGGED = re.compile(r"registering \d+ signing key\(s\) with the secret masker took ([\d.]+) s")
STATUS, EMBED, BATCHES = (
    "jobmojito_e2e_bulk_status",
    "jobmojito_e2e_bulk_embed",
    "jobmojito_embed_in_batches",
)


@dataclass
class BulkRun:
    """One finished run: its positions, its bulk task instances, and its log text."""

    dag_id: str
    run_id: str
    run: dict[str, Any]
    position_ids: list[str]
    changes: list[dict[str, Any]] = field(default_factory=list)
    log: str = ""

    @property
    def task_seconds(self) -> float:
        """The bulk tasks' durations as Airflow recorded them, summed over mapped tasks."""
        return sum(float(ti["duration"]) for ti in self.changes)

    @property
    def masking_seconds(self) -> list[float]:
        """What each bulk task logged registering its signing keys took (the supervisor's part
        included: the task waits for its answer)."""
        return [float(seconds) for seconds in MASKING_LOGGED.findall(self.log)]

    @property
    def span_seconds(self) -> float:
        """From the first bulk task's start to the last one's end."""
        return seconds_between(
            min(ti["start_date"] for ti in self.changes), max(ti["end_date"] for ti in self.changes)
        )


def _new_positions(deployment: Deployment, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    positions = [{"id": i, "name": f"Bulk {n}", "status": "active"} for n, i in enumerate(ids)]
    deployment.sandbox("POST", "/_sandbox/positions", json={"positions": positions})
    return ids


def _run(deployment: Deployment, dag_id: str, task_id: str, positions: int = POSITIONS) -> BulkRun:
    ids = _new_positions(deployment, positions)
    run_id = deployment.trigger(dag_id, {"position_ids": ids})
    run = deployment.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", f"{dag_id} run {run_id}:\n{deployment.describe_run(dag_id, run_id)}"
    result = BulkRun(dag_id, run_id, run, ids)
    result.changes = [ti for ti in deployment.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
    result.log = "\n".join(p.read_text(errors="replace") for p in deployment.task_log_files(dag_id, run_id))
    return result


@dataclass
class Measured:
    status: BulkRun
    embed: BulkRun
    batches: BulkRun
    figures: dict[str, Any]


def measure(deployment: Deployment, figures: dict[str, Any], name: str) -> Measured:
    """Run the three DAGs; write and print what they took, as ``figures[name]`` too."""
    _run(deployment, STATUS, "change", WARM_UP_POSITIONS)
    load_before = os.getloadavg()
    status = _run(deployment, STATUS, "change")
    embed = _run(deployment, EMBED, "change")
    batches = _run(deployment, BATCHES, "embed")
    load_after = os.getloadavg()

    performance = {
        "positions": POSITIONS,
        "batch_size": _default_batch_size(deployment),
        "status_change_task_s": round(status.task_seconds, 2),
        "embed_task_s": round(embed.task_seconds, 2),
        "embed_over_status": round(embed.task_seconds / status.task_seconds, 2),
        "embed_task_masking_s": embed.masking_seconds,
        "embed_in_batches_tasks": len(batches.changes),
        "embed_in_batches_task_s_sum": round(batches.task_seconds, 2),
        "embed_in_batches_task_s_median": round(
            statistics.median(float(ti["duration"]) for ti in batches.changes), 2
        ),
        "embed_in_batches_masking_s": batches.masking_seconds,
        "embed_in_batches_span_s": round(batches.span_seconds, 2),
        "embed_in_batches_span_over_status": round(batches.span_seconds / status.task_seconds, 2),
        "run_s": {r.dag_id: round(_run_seconds(r), 2) for r in (status, embed, batches)},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "airflow": version("apache-airflow"),
            "executor": deployment.env.get("AIRFLOW__CORE__EXECUTOR"),
            "parallelism": deployment.env.get("AIRFLOW__CORE__PARALLELISM"),
            "secret_mask_adapter": deployment.env.get("AIRFLOW__LOGGING__SECRET_MASK_ADAPTER", ""),
        },
    }
    output: Path = deployment.output / "performance.json"
    output.write_text(json.dumps(performance, indent=2) + "\n")
    figures[name] = performance
    print(f"\n{name}, written to {output}:\n{json.dumps(performance, indent=2)}")
    return Measured(status, embed, batches, performance)


def _default_batch_size(deployment: Deployment) -> int:
    """The example's ``batch_size`` param, as the deployment parsed it (the run used its default)."""
    params = deployment.api("GET", f"/dags/{BATCHES}/details")["params"]
    size: int = params["batch_size"]["value"]
    return size


def _run_seconds(run: BulkRun) -> float:
    return seconds_between(run.run.get("start_date"), run.run.get("end_date"))


def _signing_keys(deployment: Deployment, run: BulkRun) -> list[str]:
    """The run's positions' signing keys, each one embedded: remembered as secrets of the deployment."""
    positions = deployment.positions()
    keys = [positions[position_id]["embed_signing_key"] for position_id in run.position_ids]
    assert all(keys), "every position should be embedded"
    assert len(set(keys)) == len(keys)
    deployment.secrets.update(keys)
    return keys


def check_the_status_change(deployment: Deployment, measured: Measured) -> None:
    positions = deployment.positions()
    assert [positions[i]["status"] for i in measured.status.position_ids] == ["archived"] * POSITIONS
    assert len(measured.status.changes) == 1
    assert f"Setting {POSITIONS} position(s) -> archived" in measured.status.log


def _files_showing(deployment: Deployment, keys: list[str]) -> list[str]:
    """Every file the deployment logged to that holds one of ``keys`` (and the key's start)."""
    found = []
    for path in deployment.all_log_files():
        text = path.read_text(errors="replace")
        found += [f"{path}: {key[:4]}..." for key in keys if key in text]
    return found


def check_the_embedding(deployment: Deployment, measured: Measured) -> None:
    keys = _signing_keys(deployment, measured.embed)
    assert f"registering {POSITIONS} signing key(s) with the secret masker" in measured.embed.log
    assert len(measured.embed.changes) == 1
    assert _files_showing(deployment, keys) == []


def check_the_batches(deployment: Deployment, measured: Measured) -> None:
    keys = _signing_keys(deployment, measured.batches)
    assert len(measured.batches.changes) == math.ceil(POSITIONS / measured.figures["batch_size"])
    assert {ti["state"] for ti in measured.batches.changes} == {"success"}
    assert len(measured.batches.masking_seconds) == len(measured.batches.changes)
    assert _files_showing(deployment, keys) == []


def check_the_figures_written(deployment: Deployment, measured: Measured) -> None:
    written = json.loads((deployment.output / "performance.json").read_text())
    assert written == measured.figures
    assert all(
        math.isfinite(written[name]) and written[name] > 0
        for name in ("status_change_task_s", "embed_task_s")
    )
