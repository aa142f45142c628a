"""A real local Airflow 3 deployment for the end-to-end tests, next to a JobMojito sandbox.

:func:`start_deployment` migrates a fresh metadata database in a temporary AIRFLOW_HOME, then runs
the components of a :class:`Profile` as separate processes, each in its own process group, with
``example_dags/`` (and the profile's own DAG files) as the DAGs folder and ``jobmojito_default``
pointing at the sandbox (sign-in mode). :meth:`Deployment.stop` kills them all, task processes
included. :data:`LOCAL` is ``airflow api-server``, ``airflow scheduler`` (LocalExecutor) and
``airflow dag-processor`` on SQLite; ``tests/e2e/distributed.py`` builds the distributed one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / ".test_output" / "e2e"
AIRFLOW = Path(sys.executable).parent / "airflow"

SANDBOX_EMAIL = "demo@jobmojito.test"
SANDBOX_PASSWORD = "sandbox-password"

# The positions the sandbox starts with; each test owns its own.
ACTIVATE = ("3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e", "9b1d3c52-7e0a-4f7b-8c55-2a1e6d4b0f10")
CAREERS = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
CLOSED = ("5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d", "0d6f4b8e-1a2c-4e3f-9a7b-6c5d4e3f2a1b")
UNTOUCHED = "1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6"
#: The read side: a position JobMojito is still preparing, and one a recruiter will complete.
PREPARING = "2f3e4d5c-6b7a-4988-8a9b-0c1d2e3f4a5b"
COMPLETES = "8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f"
SEED = {
    "positions": [
        {"id": ACTIVATE[0], "name": "Data Engineer (Berlin)", "status": "draft"},
        {"id": ACTIVATE[1], "name": "Analytics Engineer (Remote)", "status": "draft"},
        {"id": CAREERS, "name": "Product Designer (Amsterdam)", "status": "draft"},
        {"id": CLOSED[0], "name": "Recruiting Coordinator (Lisbon)", "status": "active", "embedded": True},
        {"id": CLOSED[1], "name": "Site Reliability Engineer (Austin)", "status": "active", "embedded": True},
        {"id": UNTOUCHED, "name": "Office Manager (Vienna)", "status": "draft"},
        {"id": PREPARING, "name": "Support Engineer (Dublin)", "status": "preparing"},
        {"id": COMPLETES, "name": "Sales Lead (Madrid)", "status": "active", "embedded": True},
    ]
}

EXAMPLE_DAG_IDS = (
    "jobmojito_activate_positions",
    "jobmojito_archive_closed_positions",
    "jobmojito_archive_when_completed",
    "jobmojito_careers_page_embed",
    "jobmojito_hiring_closed",
    "jobmojito_embed_in_batches",
)
#: Seconds between the polls of the example's AssetWatcher (its default, 60, is for production).
WATCH_POLL_INTERVAL = "2"
WAIT_DAG_FILE = REPO / "tests" / "e2e" / "dags" / "jobmojito_e2e_wait.py"
#: A DAG started by the result watcher (``tests/e2e/test_results_watch.py``).
RESULTS_WATCH_DAG_FILE = REPO / "tests" / "e2e" / "dags" / "jobmojito_e2e_results_watch.py"
#: A DAG file the provider refuses when it is parsed (``tests/e2e/test_reschedule_guard.py``).
UNSAFE_RESCHEDULE_DAG_FILE = REPO / "tests" / "e2e" / "dags" / "jobmojito_e2e_unsafe_reschedule.py"
#: The bulk DAGs whose task durations ``tests/e2e/test_bulk_performance.py`` compares.
BULK_DAG_FILE = REPO / "tests" / "e2e" / "dags" / "jobmojito_e2e_bulk.py"
BULK_DAG_IDS = ("jobmojito_e2e_bulk_status", "jobmojito_e2e_bulk_embed")

STARTUP_TIMEOUT = 180.0
RUN_TIMEOUT = 180.0


@dataclass(frozen=True)
class Component:
    """One long-running ``airflow`` command of a deployment.

    :param argv: the arguments after ``airflow``.
    :param env: settings of this component alone, over the deployment's.
    :param ready_line: when set, startup waits until the component's output contains it (for
        components the health endpoint does not report, such as Celery workers).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_line: str | None = None


@dataclass(frozen=True)
class Profile:
    """What one kind of deployment runs; :data:`LOCAL` is the LocalExecutor one.

    :param output: where the logs, timings and figures are kept after the run.
    :param components: the Airflow processes, by name.
    :param healthy: the parts ``/api/v2/monitor/health`` must report healthy before the tests.
    :param env: Airflow settings over the common ones (the executor and its options).
    :param dag_files: DAG files to run next to ``example_dags/`` (copied into one DAGs folder).
    :param dag_ids: the DAGs those files define.
    :param import_errors: names of those files that must fail to import: startup waits for their
        import errors (any other import error fails it).
    :param seed: the sandbox's positions at start.
    :param services: starts what the deployment needs before Airflow (a database, a broker),
        registering its processes in :attr:`Deployment.services`; returns settings to add to
        :attr:`Deployment.env`. Without it the metadata database is SQLite in AIRFLOW_HOME.
    """

    output: Path = OUTPUT
    components: Mapping[str, Component] = field(
        default_factory=lambda: {
            name: Component((name,)) for name in ("api-server", "scheduler", "dag-processor", "triggerer")
        }
    )
    healthy: tuple[str, ...] = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    env: Mapping[str, str] = field(
        default_factory=lambda: {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "JOBMOJITO_WATCH_POLL_INTERVAL": WATCH_POLL_INTERVAL,
        }
    )
    dag_files: tuple[Path, ...] = (WAIT_DAG_FILE,)
    dag_ids: tuple[str, ...] = ("jobmojito_e2e_wait",)
    import_errors: tuple[str, ...] = ()
    seed: Mapping[str, Any] = field(default_factory=lambda: SEED)
    services: Callable[[Deployment], Mapping[str, str]] | None = None

    @property
    def all_dag_ids(self) -> tuple[str, ...]:
        """The DAGs startup waits for and unpauses."""
        return EXAMPLE_DAG_IDS + self.dag_ids


LOCAL = Profile(
    dag_files=(WAIT_DAG_FILE, UNSAFE_RESCHEDULE_DAG_FILE, BULK_DAG_FILE, RESULTS_WATCH_DAG_FILE),
    dag_ids=("jobmojito_e2e_wait", *BULK_DAG_IDS, "jobmojito_e2e_results_watch"),
    import_errors=(UNSAFE_RESCHEDULE_DAG_FILE.name,),
)


class DeploymentError(RuntimeError):
    """The deployment did not come up, or a component died."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (requests.RequestException, ValueError) as error:
            last_error = error
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s (last error: {last_error})")


def seconds_between(start: str | None, end: str | None) -> float:
    """Seconds from one API timestamp to another (NaN when either is missing)."""
    import pendulum

    if not start or not end:
        return float("nan")
    return float((pendulum.parse(end) - pendulum.parse(start)).total_seconds())


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<{path} unreadable>"


@dataclass
class Deployment:
    """The running deployment: where it lives, how to reach it, and what it must never log."""

    home: Path
    env: dict[str, str] = field(repr=False)  # holds the connection's password, keys
    api_url: str
    sandbox_url: str
    admin_user: str
    admin_password: str = field(repr=False)
    component_logs: Path
    output: Path = OUTPUT
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: What Airflow needs running (database, broker): stopped after the Airflow processes.
    services: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Components killed on purpose (:meth:`kill`): no longer checked by :meth:`check_alive`.
    killed: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: What each Airflow process runs, by name: for :meth:`start` after :meth:`kill`.
    components: dict[str, Component] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: Values that must appear in no log file: passwords, tokens, signing keys. Tests add to it.
    secrets: set[str] = field(default_factory=set, repr=False)
    _token: str | None = field(default=None, repr=False)

    # -- Airflow's REST API -----------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the admin user, from the simple auth manager's ``POST /auth/token``."""
        if self._token is None:
            response = requests.post(
                f"{self.api_url}/auth/token",
                json={"username": self.admin_user, "password": self.admin_password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}`` as the admin; return the JSON answer (raise on an error status)."""
        response = requests.request(
            method,
            f"{self.api_url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kwargs,
        )
        if response.status_code >= 400:
            raise AssertionError(f"{method} /api/v2{path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Trigger a manual run through the REST API; return its run id.

        On a loaded machine SQLite can stay locked longer than the API server waits, which then
        answers 500 ("Database error"): the same run id is asked for again, and a 409 says that
        an earlier ask created it.
        """
        run_id = f"manual__e2e_{secrets.token_hex(8)}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)}
        for _ in range(5):
            response = requests.post(
                f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns",
                headers={"Authorization": f"Bearer {self.token()}"},
                json=body,
                timeout=30,
            )
            if response.status_code in (200, 409):
                return run_id
            if response.status_code != 500 or "Database error" not in response.text:
                break
        raise AssertionError(f"POST /dags/{dag_id}/dagRuns answered {response.status_code}: {response.text}")

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, page by page (the API answers 100 at most at a time)."""
        tis: list[dict[str, Any]] = []
        while True:
            answer = self.api(
                "GET",
                f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                params={"limit": 100, "offset": len(tis)},
            )
            tis += answer["task_instances"]
            if not answer["task_instances"] or len(tis) >= answer["total_entries"]:
                return tis

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Each try of one task instance, first first (hostname, state, start and end)."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/tries"
        tries: list[dict[str, Any]] = self.api("GET", path)["task_instances"]
        return sorted(tries, key=lambda t: t["try_number"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        """Poll a DAG run until it finishes; return it (its ``state`` may be ``failed``)."""

        def finished() -> dict[str, Any] | None:
            self.check_alive()
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        run: dict[str, Any] = wait_for(f"{dag_id} run {run_id}", finished, timeout, interval=1.0)
        return run

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """Task states and the tail of each unsuccessful task's log, for assertion messages."""
        lines = []
        for ti in self.task_instances(dag_id, run_id):
            lines.append(f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']}")
            if ti["state"] != "success":
                for log in self.task_log_files(dag_id, run_id, ti["task_id"]):
                    lines.append(f"    {log}:\n{tail(log, 15)}")
        return "\n".join(lines)

    # -- the sandbox -----------------------------------------------------------------------------

    def sandbox(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.sandbox_url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def positions(self) -> dict[str, dict[str, Any]]:
        """The sandbox's positions by id, embed credentials included."""
        return {p["id"]: p for p in self.sandbox("GET", "/_sandbox/positions")["positions"]}

    def mint_token(self, lifetime: int | None = None) -> str:
        """A static access token from the sandbox's control API (remembered as a secret)."""
        body = {} if lifetime is None else {"lifetime": lifetime}
        token: str = self.sandbox("POST", "/_sandbox/tokens", json=body)["access_token"]
        self.secrets.add(token)
        return token

    # -- the CLI and the files -------------------------------------------------------------------

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` against this deployment's configuration."""
        return subprocess.run(
            [str(AIRFLOW), *args],
            env={**self.env, **(env or {})},
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def task_log_files(
        self, dag_id: str, run_id: str | None = None, task_id: str | None = None
    ) -> list[Path]:
        root = self.home / "logs" / f"dag_id={dag_id}"
        if run_id is not None:
            root /= f"run_id={run_id}"
            if task_id is not None:
                root /= f"task_id={task_id}"
        return sorted(p for p in root.rglob("*") if p.is_file())

    def all_log_files(self) -> Iterator[Path]:
        """Every file the deployment logged to: task logs, DAG processor logs, component output."""
        for root in (self.home / "logs", self.component_logs):
            yield from sorted(p for p in root.rglob("*") if p.is_file())

    # -- life cycle ------------------------------------------------------------------------------

    def check_alive(self) -> None:
        for name, process in {**self.services, **self.processes}.items():
            if process.poll() is not None:
                log = self.component_logs / f"{name}.log"
                raise DeploymentError(f"{name} exited with {process.returncode}; its log ends:\n{tail(log)}")

    def kill(self, name: str) -> list[int]:
        """SIGKILL a component as if its machine died: its process group and every descendant
        (task processes run in groups of their own). Return the pids killed."""
        process = self.processes.pop(name)
        self.killed[name] = process
        victims = [process.pid, *_descendants(process.pid)]
        _signal_group(process, signal.SIGKILL)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
        return victims

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start a component :meth:`kill` killed, as an operator restarts a dead machine's service;
        its output goes to ``<name>.<n>.log``, and :meth:`check_alive` checks it again."""
        component = self.components[name]
        restarts = len(list(self.component_logs.glob(f"{name}.*.log"))) + 1
        self.processes[name] = start_process(
            f"{name}.{restarts}",
            [str(AIRFLOW), *component.argv],
            {**self.env, **component.env},
            self.component_logs,
            self.home,
        )
        return self.processes[name]

    def stop(self) -> None:
        """Stop every process this deployment started (process groups), and any task left over;
        then the services."""
        _stop_groups([*self.processes.values(), *self.killed.values()])
        # Task processes run in process groups of their own: find any by this AIRFLOW_HOME.
        for pid in _pids_with_env("AIRFLOW_HOME", str(self.home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _stop_groups(list(self.services.values()))


def _stop_groups(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, wait up to 20 s in all, then SIGKILL what is left."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        _signal_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the fields after the command name
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # started with start_new_session: its pid is its group id


def _pids_with_env(name: str, value: str) -> list[int]:
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _clean_environ() -> dict[str, str]:
    """This process's environment without any Airflow setting (the unit tests' conftest sets some)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}


def start_process(
    name: str, argv: Sequence[str], env: Mapping[str, str], logs: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a process group of its own, its output in ``logs/<name>.log``."""
    log = (logs / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()  # the child has its own copy


def start_sandbox(
    workdir: Path, deployment_processes: dict[str, subprocess.Popen[bytes]], seed_positions: Mapping[str, Any]
) -> str:
    """Start the JobMojito sandbox on a free port with ``seed_positions``; return its base URL."""
    seed = workdir / "positions.json"
    seed.write_text(json.dumps(seed_positions))
    process = start_process(
        "sandbox",
        [sys.executable, "-m", "airflow_provider_jobmojito.sandbox", "--port", "0", "--seed", str(seed)],
        _clean_environ(),
        workdir,
        REPO,
    )
    deployment_processes["sandbox"] = process
    out = workdir / "sandbox.log"

    def listening() -> str | None:
        if process.poll() is not None:
            raise DeploymentError(f"the sandbox exited with {process.returncode}:\n{tail(out)}")
        for line in out.read_text().splitlines():
            if line.startswith("JobMojito sandbox listening on "):
                return line.rsplit(" ", 1)[-1]
        return None

    url: str = wait_for("the sandbox", listening, 30, interval=0.1)
    return url


def start_deployment(timings: dict[str, float] | None = None, profile: Profile = LOCAL) -> Deployment:
    """Start the sandbox and a whole Airflow deployment, and wait until its DAGs are parsed.

    On any failure everything already started is stopped, and AIRFLOW_HOME removed once its logs
    are kept, before the error propagates.
    """
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="jobmojito-e2e-home-"))
    component_logs = home / "component_logs"
    component_logs.mkdir()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    admin_password = secrets.token_urlsafe(12)
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({"admin": admin_password}))

    deployment = Deployment(
        home=home,
        env={},
        api_url=api_url,
        sandbox_url="",
        admin_user="admin",
        admin_password=admin_password,
        component_logs=component_logs,
        output=profile.output,
        processes=processes,
        components=dict(profile.components),
        secrets={SANDBOX_PASSWORD},
    )
    if timings is not None:
        deployment.timings = timings
    try:
        deployment.sandbox_url = start_sandbox(component_logs, processes, profile.seed)
        from cryptography.fernet import Fernet

        deployment.env = {
            **_clean_environ(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(_dags_folder(home, profile.dag_files)),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # The host-wide token cache of this deployment alone, removed with its home.
            "AIRFLOW__JOBMOJITO__TOKEN_CACHE_DIR": str(home / "jobmojito-token-cache"),
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            # Free ports for the log servers too (8793 and 8794 by default): two deployments on
            # one machine, or one beside a real Airflow, would otherwise collide.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # HS512 wants 64+ bytes
            "AIRFLOW_CONN_JOBMOJITO_DEFAULT": json.dumps(
                {
                    "conn_type": "jobmojito",
                    "host": f"{deployment.sandbox_url}/functions/v1",
                    "login": SANDBOX_EMAIL,
                    "password": SANDBOX_PASSWORD,
                }
            ),
            **profile.env,
        }
        if profile.services is not None:
            step = time.monotonic()
            deployment.env.update(profile.services(deployment))
            deployment.timings["services"] = time.monotonic() - step
        step = time.monotonic()
        migrate = deployment.cli("db", "migrate", timeout=180)
        if migrate.returncode != 0:
            raise DeploymentError(
                f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
            )
        deployment.timings["db migrate"] = time.monotonic() - step

        step = time.monotonic()
        for name, component in profile.components.items():
            processes[name] = start_process(
                name,
                [str(AIRFLOW), *component.argv],
                {**deployment.env, **component.env},
                component_logs,
                home,
            )

        def healthy() -> bool:
            deployment.check_alive()
            health = requests.get(f"{api_url}/api/v2/monitor/health", timeout=5).json()
            return all(health.get(part, {}).get("status") == "healthy" for part in profile.healthy)

        wait_for(f"{', '.join(profile.healthy)} to be healthy", healthy, STARTUP_TIMEOUT)
        for name, component in profile.components.items():
            if component.ready_line is not None:
                line = component.ready_line
                log = component_logs / f"{name}.log"
                wait_for(
                    f"{name} to be ready",
                    lambda log=log, line=line: _logged(deployment, log, line),
                    STARTUP_TIMEOUT,
                )
        deployment.timings["components healthy"] = time.monotonic() - step

        def parsed() -> bool:
            deployment.check_alive()
            dags = {d["dag_id"] for d in deployment.api("GET", "/dags", params={"limit": 100})["dags"]}
            errors = deployment.api("GET", "/importErrors")["import_errors"]
            failed = {Path(error["filename"]).name for error in errors}
            if failed - set(profile.import_errors):
                raise DeploymentError(f"the DAGs failed to import: {errors}")
            return dags >= set(profile.all_dag_ids) and failed >= set(profile.import_errors)

        wait_for("the DAGs to be parsed", parsed, STARTUP_TIMEOUT)
        for dag_id in profile.all_dag_ids:  # new DAGs start paused
            deployment.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        deployment.timings["startup (total)"] = time.monotonic() - started
    except BaseException:
        deployment.stop()
        keep_logs(deployment)
        shutil.rmtree(home, ignore_errors=True)  # the logs are kept; a database may be large
        raise
    return deployment


def _logged(deployment: Deployment, log: Path, line: str) -> bool:
    deployment.check_alive()
    return line in log.read_text(errors="replace")


def _dags_folder(home: Path, dag_files: Sequence[Path]) -> Path:
    """``example_dags/`` itself, or a copy of it in AIRFLOW_HOME with ``dag_files`` added."""
    if not dag_files:
        return REPO / "example_dags"
    folder = home / "dags"
    shutil.copytree(REPO / "example_dags", folder, ignore=shutil.ignore_patterns("__pycache__"))
    for path in dag_files:
        shutil.copy(path, folder / path.name)
    return folder


def run_deployment(
    profile: Profile, timings: dict[str, float], figures: dict[str, Any] | None = None
) -> Iterator[Deployment]:
    """Start a deployment of ``profile`` and yield it (a fixture's body). Afterwards stop it, keep
    its logs, ``timings.json`` and ``figures.json`` (when given) in the profile's output folder,
    and remove its AIRFLOW_HOME."""
    profile.output.mkdir(parents=True, exist_ok=True)
    with _interruptible():
        running = start_deployment(timings=timings, profile=profile)
        try:
            yield running
        finally:
            running.stop()
            keep_logs(running)
            (profile.output / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
            if figures is not None:
                (profile.output / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
            shutil.rmtree(running.home, ignore_errors=True)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) and SIGINT, even where a shell started the tests in the
    background with SIGINT ignored, raise KeyboardInterrupt meanwhile: pytest then still tears the
    fixtures down, and so stops the deployment."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def keep_logs(deployment: Deployment) -> Path:
    """Copy the deployment's logs to ``<profile output>/logs`` for a look after the run."""
    target = deployment.output / "logs"
    shutil.rmtree(target, ignore_errors=True)
    for source, name in ((deployment.home / "logs", "airflow"), (deployment.component_logs, "components")):
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
    return target
