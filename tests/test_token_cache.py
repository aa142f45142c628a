"""The host-wide cache of signed-in tokens: real processes, real files, the sandbox counting sign-ins."""

from __future__ import annotations

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
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import SandboxServer
from airflow_provider_jobmojito.token_cache import HostTokenCache
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
