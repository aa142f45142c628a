"""The distributed deployment of ``make test-e2e-celery``: the CeleryExecutor with two workers.

:func:`celery_profile` is a :class:`~tests.e2e.deployment.Profile` for
:func:`~tests.e2e.deployment.start_deployment`: before Airflow, a throwaway PostgreSQL cluster
(Debian's ``postgresql``; the metadata database and Celery's result backend) and a Redis server
(Debian's ``redis-server``; the broker), each on a free port; then the API server, scheduler, DAG
processor, triggerer and two ``airflow celery worker`` processes, each with a host name of its own.
The sandbox is seeded with the examples' positions and this test's own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

from tests.e2e.deployment import (
    ACTIVATE,
    REPO,
    SEED,
    STARTUP_TIMEOUT,
    WAIT_DAG_FILE,
    WATCH_POLL_INTERVAL,
    Component,
    Deployment,
    DeploymentError,
    Profile,
    free_port,
    start_process,
    wait_for,
)

OUTPUT = REPO / ".test_output" / "e2e-celery"
DAG_FILE = REPO / "tests" / "e2e" / "dags" / "jobmojito_e2e_celery.py"
MAPPED_DAG, BULK_DAG, SLOW_DAG = "jobmojito_e2e_mapped", "jobmojito_e2e_bulk", "jobmojito_e2e_slow"

WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 4
#: Seconds without a heartbeat before the scheduler fails a task (Airflow's default is 300); task
#: supervisors heartbeat every 5 s ([workers] min_heartbeat_interval).
HEARTBEAT_TIMEOUT = 30


def position_ids(kind: str, count: int) -> tuple[str, ...]:
    """``count`` fixed position ids for one use (``kind``)."""
    return tuple(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://jobmojito.test/e2e/{kind}/{n}")) for n in range(count)
    )


#: The example activate DAG gets many positions, so its mapped tasks spread over both workers.
ACTIVATE_MANY = ACTIVATE + position_ids("activate", 22)
#: Activated by one mapped task each, then archived by one bulk task.
SCALE = position_ids("scale", 200)
#: Activated by slow mapped tasks, one per slot of the workers; one worker is killed.
SLOW = position_ids("slow", len(WORKERS) * WORKER_CONCURRENCY)
CELERY_SEED = {
    "positions": [
        *SEED["positions"],
        *({"id": pid, "name": f"E2E position {pid[:8]}", "status": "draft"} for pid in ACTIVATE_MANY[2:]),
        *({"id": pid, "name": f"E2E position {pid[:8]}", "status": "draft"} for pid in SCALE + SLOW),
    ]
}


def postgres_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise DeploymentError(
            "no PostgreSQL server under /usr/lib/postgresql: run scripts/install_e2e_celery_deps.sh"
        )
    return found[-1].parent


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise DeploymentError(
            f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def start_postgres(deployment: Deployment) -> int:
    """A fresh cluster in ``AIRFLOW_HOME/postgres`` with a database ``airflow`` owned by the user
    ``airflow`` (trust authentication, 127.0.0.1 only); return its port.

    PostgreSQL refuses to run as root: as root it runs as the ``postgres`` user.
    """
    bindir = postgres_bindir()
    root = deployment.home / "postgres"
    root.mkdir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        deployment.home.chmod(0o711)  # postgres must reach its folder, and read nothing else here
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    superuser = ["-U", "airflow", "-A", "trust"]  # reached from 127.0.0.1 only
    _run([*as_postgres, str(bindir / "initdb"), "-D", str(data), *superuser, "-E", "UTF8", "-N"], "initdb")
    port = free_port()
    address = ["-h", "127.0.0.1", "-p", str(port), "-U", "airflow"]
    # In the foreground, in a process group of its own, like every other component.
    deployment.services["postgres"] = start_process(
        "postgres",
        [
            *as_postgres,
            str(bindir / "postgres"),
            "-D", str(data),
            "-k", str(root),
            "-p", str(port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=200",
            # A throwaway cluster: durability buys nothing.
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ],
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        deployment.component_logs,
        deployment.home,
    )  # fmt: skip

    def ready() -> bool:
        deployment.check_alive()
        check = [str(bindir / "pg_isready"), "-q", *address]
        return subprocess.run(check, timeout=30, check=False).returncode == 0

    wait_for("PostgreSQL", ready, STARTUP_TIMEOUT)
    _run([str(bindir / "createdb"), *address, "airflow"], "createdb")
    return port


def start_redis(deployment: Deployment) -> int:
    """A Redis server on a free port of 127.0.0.1, without persistence; return its port."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    folder = deployment.home / "redis"
    folder.mkdir()
    options = ["--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"]
    deployment.services["redis"] = start_process(
        "redis",
        [server, "--port", str(port), *options],
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        deployment.component_logs,
        deployment.home,
    )

    def ready() -> bool:
        deployment.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for("Redis", ready, STARTUP_TIMEOUT)
    return port


def celery_services(deployment: Deployment) -> dict[str, str]:
    """Start PostgreSQL and Redis; return the settings that point Airflow and Celery at them."""
    db = f"airflow@127.0.0.1:{start_postgres(deployment)}/airflow"
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{start_redis(deployment)}/0",
    }


def worker(name: str) -> Component:
    """``airflow celery worker`` as host ``name``: its Celery node name, the host name its task
    instances record, and a log server port of its own."""
    return Component(
        argv=(
            "celery", "worker",
            "--celery-hostname", f"{name}@%h",
            "--concurrency", str(WORKER_CONCURRENCY),
            "--pid", f"{name}.pid",  # relative to AIRFLOW_HOME; the default is one file for all
        ),
        env={
            "PYTHONPATH": str(REPO),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.worker_hostname.hostname",
            "JOBMOJITO_E2E_WORKER_HOSTNAME": name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        },
        ready_line=f"{name}@{socket.gethostname()} ready.",
    )  # fmt: skip


def celery_profile() -> Profile:
    components = {
        name: Component((name,)) for name in ("api-server", "scheduler", "dag-processor", "triggerer")
    }
    components.update({name: worker(name) for name in WORKERS})
    return Profile(
        output=OUTPUT,
        components=components,
        healthy=("metadatabase", "scheduler", "dag_processor", "triggerer"),
        env={
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            # Twice the workers' slots: the rest waits in the broker, for whichever worker is free.
            "AIRFLOW__CORE__PARALLELISM": str(2 * len(WORKERS) * WORKER_CONCURRENCY),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(2 * len(WORKERS) * WORKER_CONCURRENCY),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "JOBMOJITO_WATCH_POLL_INTERVAL": WATCH_POLL_INTERVAL,
        },
        dag_files=(DAG_FILE, WAIT_DAG_FILE),
        dag_ids=(MAPPED_DAG, BULK_DAG, SLOW_DAG, "jobmojito_e2e_wait"),
        seed=CELERY_SEED,
        services=celery_services,
    )
