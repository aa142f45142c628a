"""The example DAGs under a real scheduler, LocalExecutor workers and the DAG processor.

The three manual runs are triggered together through the REST API; ``jobmojito_hiring_closed``
must make the scheduler start ``jobmojito_archive_closed_positions`` through its Asset, which
``dag.test()`` cannot show. Then the task logs the workers wrote are read back: each call's line is
there, and no password, token or signing key is.
"""

from __future__ import annotations

import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.deployment import (
    ACTIVATE,
    CAREERS,
    CLOSED,
    RUN_TIMEOUT,
    SANDBOX_EMAIL,
    UNTOUCHED,
    Deployment,
    seconds_between,
    wait_for,
)

pytestmark = pytest.mark.e2e

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


@dataclass
class ExampleRuns:
    """The finished runs, by DAG id: ``(run_id, final run)``."""

    runs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    careers_dir: Path = Path()
    before: dict[str, dict[str, Any]] = field(default_factory=dict)
    after: dict[str, dict[str, Any]] = field(default_factory=dict)

    def assert_success(self, deployment: Deployment, dag_id: str) -> dict[str, Any]:
        run_id, run = self.runs[dag_id]
        assert run["state"] == "success", (
            f"{dag_id} run {run_id} ended {run['state']}:\n{deployment.describe_run(dag_id, run_id)}"
        )
        return run


@pytest.fixture(scope="module")
def activate_ids() -> tuple[str, ...]:
    """The positions the activate DAG's run gets (a module reusing these tests may give more)."""
    return ACTIVATE


@pytest.fixture(scope="module")
def example_runs(
    deployment: Deployment, activate_ids: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> ExampleRuns:
    result = ExampleRuns(careers_dir=tmp_path_factory.mktemp("careers"))
    result.before = deployment.positions()
    # Embedding is switched off by the archive run, and the sandbox then deletes these keys.
    for position_id in CLOSED:
        key = result.before[position_id]["embed_signing_key"]
        assert key, f"the seed should have embedded {position_id}"
        deployment.secrets.add(key)

    started = time.monotonic()
    triggered = {
        "jobmojito_activate_positions": deployment.trigger(
            "jobmojito_activate_positions", {"position_ids": list(activate_ids)}
        ),
        "jobmojito_careers_page_embed": deployment.trigger(
            "jobmojito_careers_page_embed", {"position_id": CAREERS, "output_dir": str(result.careers_dir)}
        ),
        "jobmojito_hiring_closed": deployment.trigger(
            "jobmojito_hiring_closed", {"position_ids": list(CLOSED)}
        ),
    }
    for dag_id, run_id in triggered.items():
        result.runs[dag_id] = (run_id, deployment.wait_for_run(dag_id, run_id))
        deployment.timings[f"run {dag_id}"] = _duration(result.runs[dag_id][1])

    # The Asset event of jobmojito_hiring_closed: the scheduler must start the archive DAG.
    def asset_triggered_run() -> str | None:
        runs = deployment.api(
            "GET", "/dags/jobmojito_archive_closed_positions/dagRuns", params={"run_type": "asset_triggered"}
        )["dag_runs"]
        return runs[0]["dag_run_id"] if runs else None

    archive = "jobmojito_archive_closed_positions"
    archive_run_id: str = wait_for("the asset-triggered archive run", asset_triggered_run, RUN_TIMEOUT, 1.0)
    result.runs[archive] = (archive_run_id, deployment.wait_for_run(archive, archive_run_id))
    deployment.timings[f"run {archive} (asset-triggered)"] = _duration(result.runs[archive][1])
    deployment.timings["all example runs, trigger to last finish"] = time.monotonic() - started

    result.after = deployment.positions()
    careers_key = result.after[CAREERS]["embed_signing_key"]
    if careers_key:
        deployment.secrets.add(careers_key)
    return result


def _duration(run: dict[str, Any]) -> float:
    return seconds_between(run.get("start_date"), run.get("end_date"))


def test_activate_positions(
    deployment: Deployment, example_runs: ExampleRuns, activate_ids: tuple[str, ...]
) -> None:
    example_runs.assert_success(deployment, "jobmojito_activate_positions")
    run_id, _ = example_runs.runs["jobmojito_activate_positions"]
    activate = [
        ti
        for ti in deployment.task_instances("jobmojito_activate_positions", run_id)
        if ti["task_id"] == "activate"
    ]
    # One mapped task instance per position, labelled with its id.
    assert sorted(ti["rendered_map_index"] for ti in activate) == sorted(activate_ids)
    for position_id in activate_ids:
        assert example_runs.after[position_id]["status"] == "active"
        assert example_runs.after[position_id]["embed_id"] is None


def test_careers_page_embed(deployment: Deployment, example_runs: ExampleRuns) -> None:
    example_runs.assert_success(deployment, "jobmojito_careers_page_embed")
    position = example_runs.after[CAREERS]
    assert position["status"] == "active"
    assert position["embed_id"]
    assert position["embed_signing_key"]

    snippet = (example_runs.careers_dir / f"{CAREERS}.html").read_text()
    assert f"embed_id={position['embed_id']}" in snippet
    backend_env = example_runs.careers_dir / f"{CAREERS}.env"
    assert stat.S_IMODE(backend_env.stat().st_mode) == 0o600
    assert f"JOBMOJITO_EMBED_SIGNING_KEY={position['embed_signing_key']}\n" in backend_env.read_text()


def test_hiring_closed_archives_through_the_asset(deployment: Deployment, example_runs: ExampleRuns) -> None:
    example_runs.assert_success(deployment, "jobmojito_hiring_closed")
    run = example_runs.assert_success(deployment, "jobmojito_archive_closed_positions")
    assert run["run_type"] == "asset_triggered"
    assert run["triggered_by"] == "asset"

    params = {"source_dag_id": "jobmojito_hiring_closed"}
    events = deployment.api("GET", "/assets/events", params=params)["asset_events"]
    assert [e["extra"].get("position_ids") for e in events] == [list(CLOSED)]

    for position_id in CLOSED:
        position = example_runs.after[position_id]
        assert position["status"] == "archived"
        assert position["embed_id"] is None
        assert position["embed_signing_key"] is None


def test_other_positions_untouched(example_runs: ExampleRuns) -> None:
    assert example_runs.after[UNTOUCHED] == example_runs.before[UNTOUCHED]


def test_task_logs_have_each_call_and_no_secret(
    deployment: Deployment, example_runs: ExampleRuns, activate_ids: tuple[str, ...]
) -> None:
    for dag_id in example_runs.runs:
        example_runs.assert_success(deployment, dag_id)
    task_logs = {
        dag_id: "\n".join(p.read_text() for p in deployment.task_log_files(dag_id, run_id))
        for dag_id, (run_id, _) in example_runs.runs.items()
    }
    for position_id in activate_ids:
        assert f"position {position_id} -> active (" in task_logs["jobmojito_activate_positions"]
    assert f"position {CAREERS} -> embedding on (" in task_logs["jobmojito_careers_page_embed"]
    assert f"position {CAREERS} -> active (" in task_logs["jobmojito_careers_page_embed"]
    # The archive DAG changes every closed position in one bulk task: a line each, then a summary.
    for position_id in CLOSED:
        line = f"position {position_id} -> archived, embedding off"
        assert line in task_logs["jobmojito_archive_closed_positions"]
    summary = f"Setting {len(CLOSED)} position(s) -> archived, embedding off"
    assert summary in task_logs["jobmojito_archive_closed_positions"]
    # A process did sign in (so there were tokens to hide): the first one of this host to need a
    # token, a task or the triggerer (its AssetWatcher polls from the start), since the others
    # take it from the host-wide cache.
    files = list(deployment.all_log_files())
    signed_in = f"Signed in to JobMojito as {SANDBOX_EMAIL}"
    assert any(signed_in in path.read_text(errors="replace") for path in files)

    # Every token the sandbox issues for this user starts the same way (JWT header, then the
    # payload's issuer, subject, audience, role and e-mail): a fingerprint of signed-in tokens,
    # which the test never sees whole.
    fingerprint = _token_fingerprint(deployment.mint_token())
    assert any("dag_id=" in str(p) for p in files)
    leaks = []
    for path in files:
        text = path.read_text(errors="replace")
        leaks += [f"{path}: a secret ({secret[:4]}...)" for secret in deployment.secrets if secret in text]
        if fingerprint in text:
            leaks.append(f"{path}: a sandbox access token")
        leaks += [f"{path}: an unmasked JWT {m[:12]}..." for m in JWT.findall(text)]
    assert not leaks, "\n".join(leaks)


def _token_fingerprint(token: str) -> str:
    """The leading characters that every sandbox token for the same user shares with ``token``."""
    import base64
    import json

    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    shared = {k: claims[k] for k in ("iss", "sub", "aud", "role", "email")}
    assert list(claims)[: len(shared)] == list(shared), "the claims' order changed: adapt the fingerprint"
    prefix = json.dumps(shared, separators=(",", ":"))[:-1] + ","
    encoded_chars = len(prefix) // 3 * 4  # base64 encodes each whole 3-byte group the same way
    assert payload.startswith(base64.urlsafe_b64encode(prefix.encode()).decode()[:encoded_chars])
    return f"{header}.{payload[:encoded_chars]}"
