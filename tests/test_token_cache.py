"""The host-wide cache of signed-in tokens: real processes, real files, the sandbox counting sign-ins."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jobmojito.auth import SIGN_IN_CACHE
from airflow_provider_jobmojito.exceptions import JobMojitoAuthError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import SandboxServer
from airflow_provider_jobmojito.token_cache import FailedSignIn, HostTokenCache
from tests.conftest import REPO

EMAIL, PASSWORD = "cache@example.com", "cache-password-never-on-disk"
SIGN_IN = "/auth/v1/token"


@pytest.fixture
def server() -> Any:
    with SandboxServer(email=EMAIL, password=PASSWORD) as sandbox:
        yield sandbox


@pytest.fixture
def conn_id(server: Any, jobmojito_conn: Any) -> str:
    return str(jobmojito_conn(host=server.api_url, login=EMAIL, password=PASSWORD))


def cache_dir() -> Path:
    return Path(os.environ["AIRFLOW__JOBMOJITO__TOKEN_CACHE_DIR"])


def sign_ins(server: Any) -> int:
    return [r["path"] for r in server.requests_log()].count(SIGN_IN)


def as_another_process(conn_id: str) -> JobMojitoHook:
    """A hook as a new task process would have it: nothing cached in this process."""
    SIGN_IN_CACHE.clear()
    return JobMojitoHook(conn_id)


def test_task_processes_starting_together_sign_in_once(server: Any, conn_id: str) -> None:
    # Each process also checks that the token it used is masked in its logs, whether it signed in
    # itself or took the token from the file.
    script = (
        "from airflow.providers.common.compat.sdk import redact\n"
        "from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook\n"
        "hook = JobMojitoHook()\n"
        "hook.list_interviews(limit=1)\n"
        "token = hook.client.run(hook.endpoints.authenticate())\n"
        "assert redact(f'token={token}') == 'token=***', 'the token is not masked'\n"
    )
    env = {**os.environ, "AIRFLOW_CONN_JOBMOJITO_DEFAULT": os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]}
    processes = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env) for _ in range(6)]
    assert [process.wait(timeout=300) for process in processes] == [0] * 6
    lists = [r for r in server.requests_log() if r["path"].endswith("merchant-interview-list")]
    assert len(lists) == 6
    assert sign_ins(server) == 1


def test_the_cache_is_private_and_never_holds_the_password(server: Any, conn_id: str) -> None:
    JobMojitoHook(conn_id).list_interviews(limit=1)
    folder = cache_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert PASSWORD not in text
        assert EMAIL not in text
        assert EMAIL not in path.name
    [token_file] = [path for path in files if path.suffix == ".json"]
    cached = SIGN_IN_CACHE.get(SIGN_IN_CACHE.key(server.url, EMAIL, PASSWORD))
    assert cached is not None
    assert json.loads(token_file.read_text())["access_token"] == cached.access_token


def test_another_process_reuses_the_token_on_file(server: Any, conn_id: str) -> None:
    JobMojitoHook(conn_id).list_interviews(limit=1)
    as_another_process(conn_id).list_interviews(limit=1)
    assert sign_ins(server) == 1


def test_a_401_makes_the_next_process_sign_in_once_for_all(server: Any, conn_id: str) -> None:
    JobMojitoHook(conn_id).list_interviews(limit=1)
    server.add_fault("status", status=401, count=1, path="/functions/v1/merchant-interview-list")
    as_another_process(conn_id).list_interviews(limit=1)  # refused, signs in again, shares it
    as_another_process(conn_id).list_interviews(limit=1)
    as_another_process(conn_id).list_interviews(limit=1)
    assert sign_ins(server) == 2


@pytest.mark.parametrize(
    "spoil",
    [
        lambda path: path.write_text("{not json"),
        lambda path: path.write_text(
            json.dumps({"format": 1, "account": "someone else", "access_token": "x"})
        ),
        lambda path: path.chmod(0o644),
    ],
    ids=["corrupt", "foreign account", "readable by others"],
)
def test_a_file_that_cannot_be_trusted_is_ignored(server: Any, conn_id: str, spoil: Any) -> None:
    JobMojitoHook(conn_id).list_interviews(limit=1)
    [token_file] = cache_dir().glob("*.json")
    spoil(token_file)
    as_another_process(conn_id).list_interviews(limit=1)
    assert sign_ins(server) == 2


def test_a_symlink_in_place_of_the_file_is_not_followed(server: Any, conn_id: str, tmp_path: Path) -> None:
    JobMojitoHook(conn_id).list_interviews(limit=1)
    [token_file] = cache_dir().glob("*.json")
    planted = tmp_path / "planted.json"
    planted.write_text(token_file.read_text())
    planted.chmod(0o600)
    token_file.unlink()
    token_file.symlink_to(planted)
    as_another_process(conn_id).list_interviews(limit=1)
    assert sign_ins(server) == 2


def test_a_folder_others_can_use_is_not_used(
    server: Any, conn_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("AIRFLOW__JOBMOJITO__TOKEN_CACHE_DIR", str(shared))
    JobMojitoHook(conn_id).list_interviews(limit=1)
    assert list(shared.iterdir()) == []
    as_another_process(conn_id).list_interviews(limit=1)
    assert sign_ins(server) == 2  # one per process, as without the cache


def test_token_cache_process_switches_it_off(
    server: Any, conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__JOBMOJITO__TOKEN_CACHE", "process")
    JobMojitoHook(conn_id).list_interviews(limit=1)
    as_another_process(conn_id).list_interviews(limit=1)
    assert not cache_dir().exists()
    assert sign_ins(server) == 2


_LOCK_PROBE = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("held")
else:
    print("free")
"""


def test_a_discard_while_another_thread_signs_in_leaves_the_host_lock_held(tmp_path: Path) -> None:
    # A record lock belongs to the process: a second descriptor closed by discard() (a 401 in
    # another thread) used to release the signing-in thread's lock for every other process.
    cache = HostTokenCache(tmp_path / "tokens")
    key = ("https://supabase.example.com", "probe@example.com", "digest")

    def seen_from_another_process() -> str:
        [lock_file] = (tmp_path / "tokens").glob("*.lock")
        probe = subprocess.run(
            [sys.executable, "-c", _LOCK_PROBE, str(lock_file)], capture_output=True, text=True, check=True
        )
        return probe.stdout.strip()

    with cache.lock(key):  # a sign-in in progress
        assert seen_from_another_process() == "held"
        discarding = threading.Thread(target=cache.discard, args=(key, "refused-token"))
        discarding.start()
        discarding.join()
        assert seen_from_another_process() == "held"
    assert seen_from_another_process() == "free"


# Filesystem trouble: the cache is an optimisation, never a reason for a task to fail or hang.

_TASK = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format='%(levelname)s %(message)s')\n"
    "from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook\n"
    "hook = JobMojitoHook()\n"
    "for _ in range(3):\n"
    "    hook.list_interviews(limit=1)\n"
    "    hook.client.run(hook.endpoints.authenticate())\n"
    "print('done')\n"
)


def run_task(conn_id: str, script: str = _TASK, *, stdin: Any = None) -> subprocess.CompletedProcess[str]:
    """The hook in a task process of its own; the outer timeout makes a hang a failure."""
    env = {**os.environ, "AIRFLOW_CONN_JOBMOJITO_DEFAULT": os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]}
    return subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def account_file(server: Any, suffix: str, password: str = PASSWORD) -> Path:
    key = SIGN_IN_CACHE.key(server.url, EMAIL, password)
    return cache_dir() / f"{hashlib.sha256(chr(0).join(key).encode()).hexdigest()[:40]}{suffix}"


def cache_warnings(output: str) -> list[str]:
    # Airflow 3 logs through structlog ("[warning  ] ..."), Airflow 2 through logging ("WARNING ...").
    return [line for line in output.splitlines() if "warning" in line.lower() and "token cache" in line]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only folder all the same")
def test_a_read_only_cache_folder_degrades_to_the_process_cache_with_a_warning(
    server: Any, conn_id: str
) -> None:
    cache_dir().mkdir(mode=0o700)
    cache_dir().chmod(0o500)
    try:
        task = run_task(conn_id)
    finally:
        cache_dir().chmod(0o700)
    assert task.returncode == 0, task.stderr
    assert len(cache_warnings(task.stdout)) == 1  # once per process and folder, not per call
    assert sign_ins(server) == 1  # the process's own cache still serves its later calls


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda path: os.mkfifo(path, 0o600), id="fifo"),
        pytest.param(lambda path: path.symlink_to(path.with_name("elsewhere")), id="symlink"),
        pytest.param(lambda path: path.mkdir(mode=0o700), id="folder"),
    ],
)
@pytest.mark.parametrize("suffix", [".lock", ".json"], ids=["lock file", "token file"])
def test_a_lock_or_token_path_that_is_not_a_regular_file_degrades_without_hanging(
    server: Any, conn_id: str, plant: Any, suffix: str
) -> None:
    # A folder where both files go stands for a folder that cannot be written, as root too.
    cache_dir().mkdir(mode=0o700)
    plant(account_file(server, suffix))
    task = run_task(conn_id)  # a FIFO once made open() wait forever: the timeout fails the test
    assert task.returncode == 0, task.stderr
    assert task.stdout.splitlines()[-1] == "done"
    assert len(cache_warnings(task.stdout)) <= 1
    assert PASSWORD not in task.stdout + task.stderr
    assert sign_ins(server) == 1


def test_a_fifo_in_place_of_the_lock_file_does_not_hang(server: Any, conn_id: str) -> None:
    cache_dir().mkdir(mode=0o700)
    os.mkfifo(account_file(server, ".lock"), 0o600)
    task = run_task(conn_id)
    assert task.returncode == 0, task.stderr
    [warning] = cache_warnings(task.stdout)
    assert "is not a regular file" in warning
    assert sign_ins(server) == 1


def test_a_cache_folder_that_cannot_be_made_warns_once_and_tasks_still_run(
    server: Any, conn_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AIRFLOW__JOBMOJITO__TOKEN_CACHE_DIR", str(blocker / "tokens"))
    script = _TASK.replace("hook = JobMojitoHook()\n", "").replace(
        "for _ in range(3):\n", "for _ in range(3):\n    hook = JobMojitoHook()\n"
    )
    task = run_task(conn_id, script)
    assert task.returncode == 0, task.stderr
    assert sum("Not sharing signed-in tokens" in line for line in task.stdout.splitlines()) == 1
    assert sign_ins(server) == 1


# A failing sign-in: remembered briefly on the host, so that the processes behind it fail fast.

_WAITING_TASK = (
    "import sys\n"
    "from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook\n"
    "hook = JobMojitoHook()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()  # the test lets go of the host lock, then closes our stdin\n"
    "try:\n"
    "    hook.list_interviews(limit=1)\n"
    "except Exception as error:\n"
    "    print(type(error).__name__, error)\n"
)


def test_processes_waiting_for_a_failing_sign_in_fail_fast_instead_of_replaying_the_retries(
    server: Any, jobmojito_conn: Any
) -> None:
    conn_id = str(
        jobmojito_conn(
            host=server.api_url,
            login=EMAIL,
            password=PASSWORD,
            extra={"backoff_factor": 0.01, "max_retries": 2},
        )
    )
    server.add_fault("status", status=503, count=1000, path=SIGN_IN)
    env = {**os.environ, "AIRFLOW_CONN_JOBMOJITO_DEFAULT": os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]}
    cache = HostTokenCache(cache_dir())
    key = SIGN_IN_CACHE.key(server.url, EMAIL, PASSWORD)
    with cache.lock(key):  # a sign-in in progress: the tasks queue behind it
        tasks = [
            subprocess.Popen(
                [sys.executable, "-c", _WAITING_TASK],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for task in tasks:
            assert task.stdout is not None
            while task.stdout.readline() not in ("ready\n", ""):  # past Airflow's own start-up lines
                pass
    try:
        outputs = [task.communicate("", timeout=120) for task in tasks]
    finally:
        for task in tasks:
            if task.poll() is None:
                task.kill()
    errors = [out.strip().splitlines()[-1] for out, _ in outputs]
    assert all(error.startswith("JobMojitoUnavailableError ") for error in errors), outputs
    assert sum("failed the same way moments ago" in error for error in errors) == 3
    assert sign_ins(server) == 3  # one process's attempts (1 + max_retries=2), not four times that
    for path in cache_dir().iterdir():
        assert PASSWORD not in path.read_text()
        assert EMAIL not in path.read_text()


def test_refused_credentials_are_not_sent_again_by_the_next_process(server: Any, jobmojito_conn: Any) -> None:
    wrong = "a wrong password 456"
    conn_id = str(jobmojito_conn(host=server.api_url, login=EMAIL, password=wrong))
    with pytest.raises(JobMojitoAuthError, match="Invalid login credentials") as first:
        JobMojitoHook(conn_id).list_interviews(limit=1)
    with pytest.raises(JobMojitoAuthError, match="Invalid login credentials") as second:
        as_another_process(conn_id).list_interviews(limit=1)
    assert second.value.status_code == first.value.status_code == 400
    assert "moments ago" in str(second.value)
    assert sign_ins(server) == 1
    for path in cache_dir().iterdir():
        assert wrong not in path.read_text()
        assert EMAIL not in path.read_text()


def test_a_rotated_password_is_tried_at_once_after_a_refused_sign_in(
    server: Any, jobmojito_conn: Any
) -> None:
    with pytest.raises(JobMojitoAuthError):
        JobMojitoHook(
            jobmojito_conn(host=server.api_url, login=EMAIL, password="old password")
        ).list_interviews(limit=1)
    rotated = str(jobmojito_conn(host=server.api_url, login=EMAIL, password=PASSWORD))
    as_another_process(rotated).list_interviews(limit=1)
    assert sign_ins(server) == 2


def test_a_sign_in_after_a_remembered_failure_has_expired_goes_through(tmp_path: Path) -> None:
    now = [1_000_000.0]
    cache = HostTokenCache(tmp_path / "tokens", clock=lambda: now[0])
    key = ("https://supabase.example.com", "probe@example.com", "digest")
    failure = FailedSignIn(
        kind="JobMojitoServerError", status_code=500, error="down", message="failed", until=now[0] + 30
    )
    cache.remember_failure(key, "fingerprint", failure)
    assert cache.failure(key, "fingerprint") == failure
    assert cache.failure(key, "another fingerprint") is None  # rotated credentials: tried at once
    now[0] += 30
    assert cache.failure(key, "fingerprint") is None
    now[0] -= 3600  # a clock set back far: the record holds no longer than the longest memory
    assert cache.failure(key, "fingerprint") is None
