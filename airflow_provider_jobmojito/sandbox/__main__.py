"""Command line: ``python -m airflow_provider_jobmojito.sandbox`` (also ``jobmojito-sandbox``).

Prints ``JobMojito sandbox listening on http://HOST:PORT`` on stdout once it accepts connections,
then serves until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .server import DEFAULT_EMAIL, DEFAULT_PASSWORD, SandboxServer
from .state import Position, ValidationError, parse_seed

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import FrameType

DEFAULT_PORT = 8808


class _Shutdown(Exception):
    """Raised in the main thread by the signal handler to leave the serving loop."""


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="jobmojito-sandbox",
        description="Serve a JobMojito-compatible API for offline development and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one (default %(default)s)"
    )
    parser.add_argument(
        "--seed", metavar="FILE.json", action="append", default=[], help='seed file: {"positions": [...]}'
    )
    parser.add_argument(
        "--position",
        metavar="UUID[:STATUS]",
        action="append",
        default=[],
        help="seed one position (status defaults to draft); repeatable",
    )
    parser.add_argument("--state-file", metavar="FILE", help="load state from FILE, save every change to it")
    parser.add_argument("--token-lifetime", type=int, default=3600, metavar="SECONDS")
    parser.add_argument("--email", default=DEFAULT_EMAIL, help="sign-in e-mail (default %(default)s)")
    parser.add_argument(
        "--password",
        default=env("JOBMOJITO_SANDBOX_PASSWORD", DEFAULT_PASSWORD),
        help="sign-in password (env JOBMOJITO_SANDBOX_PASSWORD; default: the documented sandbox password)",
    )
    parser.add_argument(
        "--anon-key",
        default=env("JOBMOJITO_SANDBOX_ANON_KEY"),
        help="require this apikey header on /auth/v1 (env JOBMOJITO_SANDBOX_ANON_KEY)",
    )
    parser.add_argument(
        "--jwt-secret",
        default=env("JOBMOJITO_SANDBOX_JWT_SECRET"),
        help="HS256 signing key, to keep tokens valid across restarts (env JOBMOJITO_SANDBOX_JWT_SECRET)",
    )
    parser.add_argument(
        "--no-sign-in-limit",
        dest="sign_in_limit",
        action="store_false",
        help="do not enforce Supabase's sign-in rate limit (30 per client, refilled 150 per 5 minutes); "
        "POST /_sandbox/sign-in-limit changes it at run time",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request line to stderr")
    return parser


def _seed_positions(seed_files: Sequence[str], position_args: Sequence[str]) -> Iterator[Position]:
    for seed_file in seed_files:
        yield from parse_seed(json.loads(Path(seed_file).read_text(encoding="utf-8")))
    for arg in position_args:
        position_id, _, status = arg.partition(":")
        spec: dict[str, Any] = {"id": position_id}
        if status:
            spec["status"] = status
        yield Position.from_seed(spec)


def _raise_shutdown(_signum: int, _frame: FrameType | None) -> None:
    raise _Shutdown


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until interrupted.

    :param argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.
    :return: the exit status: 0 after SIGINT/SIGTERM, 1 when the address cannot be bound, 2 for a
        bad seed or state file.
    """
    args = _parser().parse_args(argv)
    try:
        positions = list(_seed_positions(args.seed, args.position))
        server = SandboxServer(
            args.host,
            args.port,
            token_lifetime=args.token_lifetime,
            email=args.email,
            password=args.password,
            anon_key=args.anon_key,
            jwt_secret=args.jwt_secret,
            state_file=args.state_file,
            positions=positions,
            verbose=args.verbose,
            sign_in_limit=args.sign_in_limit,
        )
    except (OSError, ValueError) as error:  # ValidationError and JSONDecodeError are ValueErrors
        detail = f"{error.name}: {error.message}" if isinstance(error, ValidationError) else str(error)
        print(f"jobmojito-sandbox: invalid seed or state: {detail}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as error:
        print(f"jobmojito-sandbox: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1

    # Both signals are handled explicitly: a shell starting us in the background may have set
    # SIGINT to "ignore", which Python would otherwise inherit.
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _raise_shutdown)
    try:
        print(f"JobMojito sandbox listening on {server.url}", flush=True)
        print(
            f"API base URL {server.api_url}; sign in as {args.email}. Ctrl+C to stop.",
            file=sys.stderr,
            flush=True,
        )
        while True:
            time.sleep(3600)  # signals interrupt the sleep; the handlers raise
    except (KeyboardInterrupt, _Shutdown):
        pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
