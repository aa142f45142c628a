"""A minimal JobMojito-shaped HTTP server with a set latency, for the benchmarks.

Run in a process of its own, so that its CPU time does not compete with the client's under one
GIL::

    python -m benchmarks.latency_server --delay 0.02

It prints ``PORT <n>`` on its first line, then serves until its stdin closes (so it never
outlives the benchmark that started it). It answers ``POST .../job-interview-set-state`` with
``{"success": true}`` after ``--delay`` seconds (``{"embed_id", "embed_signing_key"}``, a fresh
random key, when the body sets ``"is_embedded": true``), accepts any bearer token, keeps connections
alive (HTTP/1.1), and counts the set-state calls it answered: ``GET /_count`` returns
``{"count": n, "distinct": ids}`` and ``DELETE /_count`` resets both.

It is an asyncio loop with a deliberately small HTTP parser, not ``http.server``: a real API's
CPU is not on the client's machine, so the stand-in should use as little of it as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import threading
import uuid

SET_STATE_PATH = b"/functions/v1/job-interview-set-state"
_REASONS = {
    200: b"OK",
    401: b"Unauthorized",
    404: b"Not Found",
    422: b"Unprocessable Entity",
    503: b"Service Unavailable",
}


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.seen: set[str] = set()


def _response(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        _REASONS.get(status, b"Error"),
        len(body),
        body,
    )


def _set_state_answer(request: dict[str, object]) -> bytes:
    if request.get("is_embedded") is True:
        keys = {"embed_id": str(uuid.uuid4()), "embed_signing_key": secrets.token_urlsafe(32)}
        return json.dumps(keys).encode()
    return b'{"success":true}'


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes, dict[bytes, bytes], bytes]:
    """One request: its method, path (without the query), lower-case headers and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, _, header_block = head.partition(b"\r\n")
    method, target, _ = request_line.split(b" ", 2)
    headers = {}
    for line in header_block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return method, target.split(b"?", 1)[0], headers, body


async def _serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    counter: _Counter,
    status: int = 200,
) -> None:
    try:
        while True:
            try:
                method, path, headers, body = await _read_request(reader)
            except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
                return  # the client closed the connection, or the server is stopping
            if method == b"POST" and path == SET_STATE_PATH:
                if not headers.get(b"authorization", b"").startswith(b"Bearer "):
                    writer.write(_response(401, b'{"error":"Missing bearer token."}'))
                    continue
                try:
                    request = json.loads(body)
                    position_id = request["position_id"]
                except (ValueError, KeyError, TypeError):
                    writer.write(_response(422, b'{"error":"Bad body.","name":"body"}'))
                    continue
                if delay:
                    await asyncio.sleep(delay)
                counter.count += 1
                if status == 200:
                    counter.seen.add(position_id)
                    writer.write(_response(200, _set_state_answer(request)))
                else:  # an API that is down: every call fails, and is counted
                    writer.write(_response(status, b'{"error":"Service unavailable."}'))
            elif path == b"/_count" and method == b"GET":
                payload = {"count": counter.count, "distinct": len(counter.seen)}
                writer.write(_response(200, json.dumps(payload).encode()))
            elif path == b"/_count" and method == b"DELETE":
                counter.count = 0
                counter.seen.clear()
                writer.write(_response(200, b"{}"))
            else:
                writer.write(_response(404, b'{"error":"Not found"}'))
    finally:
        writer.close()


async def _main(delay: float, status: int) -> None:
    counter = _Counter()
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, delay, counter, status), "127.0.0.1", 0, backlog=512
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wait_for_parent() -> None:
        sys.stdin.read()  # returns when the parent closes our stdin, or dies
        loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=wait_for_parent, daemon=True).start()
    async with server:
        await stopped.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A JobMojito-shaped server with a set latency.")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument(
        "--status", type=int, default=200, help="answer every set-state call with this status (503: down)"
    )
    args = parser.parse_args(argv)
    asyncio.run(_main(args.delay, args.status))


if __name__ == "__main__":
    main()
