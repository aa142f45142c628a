"""A minimal JobMojito-shaped HTTP server with a set latency, for the benchmarks.

Run in a process of its own, so that its CPU time does not compete with the client's under one
GIL::

    python -m benchmarks.latency_server --delay 0.02

It prints ``PORT <n>`` on its first line, then serves until its stdin closes (so it never
outlives the benchmark that started it). It answers ``POST .../job-interview-set-state`` with
``{"success": true}`` after ``--delay`` seconds (``{"embed_id", "embed_signing_key"}``, a fresh
random key, when the body sets ``"is_embedded": true``), accepts any bearer token, keeps connections
alive (HTTP/1.1), and counts the set-state calls it answered: ``GET /_count`` returns
``{"count": n, "distinct": ids}`` and ``DELETE /_count`` resets them. With ``--results N`` it
also answers ``GET .../merchant-result-list`` with pages of N synthetic results (newest updated
first, one second apart, after ``--delay``), counted as ``lists`` in ``/_count``.

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
import time
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
        self.lists = 0  # merchant-result-list calls answered


RESULTS_PATH = b"/functions/v1/merchant-result-list"
#: 2026-01-01T00:00:00Z: result ``i`` (0 the newest of ``n``) was updated ``n - i`` seconds after it.
RESULTS_EPOCH = 1_767_225_600
# A row with the fields and about the size of the API's (the sandbox's rows, 1.3 kB of JSON).
_ROW = (
    '{"id":"5e5a1700-0000-4000-8000-%(n)012d","interview_result_id":"5e5a1701-0000-4000-8000-%(n)012d",'
    '"interview_result_pre_screening_id":null,"merchant_id":"6f1c2e84-3b5a-4d7e-9c10-5a4b3c2d1e0f",'
    '"profile_id":"5e5a1702-0000-4000-8000-%(n)012d","profile_interview_id":"5e5a1703-0000-4000-8000-%(n)012d",'
    '"definition_id":"0c0ffee0-0000-4000-8000-00000000000%(d)d","candidate_name":"Ada Lovelace %(n)d",'
    '"candidate_email":"ada.lovelace.%(n)d@candidates.example","position_name":"Benchmark interview %(d)d",'
    '"position_step":"interview","type":"interview","emoji":null,"external_id":"ext-%(n)d",'
    '"mojito_language_code":"en","status":"active","coach_status":"completed","decision_status":null,'
    '"interview_started":true,"is_multi_stage":false,"is_test":false,"recruiter_shortlist":false,'
    '"recruiter_risks":null,"duration_ds":%(dur)d,"score":%(s)d.0,"score_simulation":null,'
    '"score_sentiment":%(s2)d.0,"score_words_per_minute":%(wpm)d.0,"score_interview_ai":%(s)d.0,'
    '"score_answer_ai":%(s)d.0,"score_pronunciation":null,"processing_status":"done",'
    '"processing_error":null,"kyc_processing_status":null,"position_result_step_id":null,'
    '"created_at":"%(stamp)s","updated_at":"%(stamp)s"}'
)


def _stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


class _Results:
    """``n`` synthetic results, newest updated first, rendered once at start into one buffer: a
    page is a slice of it, so answering costs the server next to no CPU (a real API's CPU is not
    on the client's machine)."""

    def __init__(self, n: int) -> None:
        self.n = n
        rows = [
            (
                _ROW
                % {
                    "n": i,
                    "d": i % 7,
                    "dur": 6000 + i % 3000,
                    "s": i * 37 % 101,
                    "s2": i * 13 % 101,
                    "wpm": 110 + i % 60,
                    "stamp": _stamp(RESULTS_EPOCH + n - i),
                }
            ).encode()
            for i in range(n)
        ]
        self.starts = [0]
        for row in rows:
            self.starts.append(self.starts[-1] + len(row) + 1)  # and its comma
        self.blob = b",".join(rows) + b","

    def page(self, query: bytes) -> bytes:
        """The list's answer to ``query`` (its ``limit`` and ``offset``)."""
        params = dict(part.split(b"=", 1) for part in query.split(b"&") if b"=" in part)
        limit, offset = int(params.get(b"limit", b"50")), int(params.get(b"offset", b"0"))
        first, last = min(offset, self.n), min(offset + limit, self.n)
        data = self.blob[self.starts[first] : self.starts[last]].rstrip(b",")
        pagination = {"total": self.n, "limit": limit, "offset": offset, "has_more": last < self.n}
        return b'{"data":[' + data + b'],"pagination":' + json.dumps(pagination).encode() + b"}"


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


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[bytes, bytes, dict[bytes, bytes], bytes, bytes]:
    """One request: its method, path (without the query), lower-case headers, body and query."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, _, header_block = head.partition(b"\r\n")
    method, target, _ = request_line.split(b" ", 2)
    headers = {}
    for line in header_block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    path, _, query = target.partition(b"?")
    return method, path, headers, body, query


async def _serve_connection(  # noqa: PLR0912 (one branch per route)
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    counter: _Counter,
    status: int = 200,
    *,
    results: _Results | None = None,
) -> None:
    try:
        while True:
            try:
                method, path, headers, body, query = await _read_request(reader)
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
            elif method == b"GET" and path == RESULTS_PATH and results is not None:
                if delay:
                    await asyncio.sleep(delay)
                counter.lists += 1
                assert results is not None  # the route is served only with --results
                writer.write(_response(200, results.page(query)))
            elif path == b"/_count" and method == b"GET":
                payload = {"count": counter.count, "distinct": len(counter.seen)}
                if results is not None:
                    payload["lists"] = counter.lists
                writer.write(_response(200, json.dumps(payload).encode()))
            elif path == b"/_count" and method == b"DELETE":
                counter.count = counter.lists = 0
                counter.seen.clear()
                writer.write(_response(200, b"{}"))
            else:
                writer.write(_response(404, b'{"error":"Not found"}'))
    finally:
        writer.close()


async def _main(delay: float, status: int, results: int = 0) -> None:
    counter = _Counter()
    rendered = _Results(results) if results else None
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, delay, counter, status, results=rendered),
        "127.0.0.1",
        0,
        backlog=512,
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
    parser.add_argument(
        "--results", type=int, default=0, help="interview results GET merchant-result-list pages through"
    )
    args = parser.parse_args(argv)
    asyncio.run(_main(args.delay, args.status, args.results))


if __name__ == "__main__":
    main()
