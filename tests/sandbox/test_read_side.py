"""The read side over real HTTP: updated_at, the list's filter, order and pages, admin changes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_jobmojito.sandbox import POSITION_STATUSES, ManualClock, SandboxServer, ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    SandboxFactory = Callable[..., SandboxServer]

PID = "3f2a6c1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"
OTHER_PID = "0c9e8d7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
UNKNOWN_PID = "99999999-9999-4999-8999-999999999999"
#: The contract's example form: "2026-01-20T14:05:00.000Z".
ISO_UTC_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LIST = "/functions/v1/merchant-interview-list"


class Client:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {server.issue_token()}"

    def get(self, position_id: str = PID) -> requests.Response:
        return self.http.get(
            f"{self.server.api_url}/job-interview-get", params={"position_id": position_id}, timeout=10
        )

    def list(self, **params: Any) -> requests.Response:
        return self.http.get(f"{self.server.api_url}/merchant-interview-list", params=params, timeout=10)

    def set_state(self, position_id: str, status: str) -> requests.Response:
        body = {"position_id": position_id, "status": status}
        return self.http.post(f"{self.server.api_url}/job-interview-set-state", json=body, timeout=10)

    def admin(self, position_id: str, body: Any) -> requests.Response:
        return requests.post(
            f"{self.server.url}/_sandbox/positions/{position_id}/status", json=body, timeout=10
        )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def server(jobmojito_sandbox_factory: SandboxFactory, clock: ManualClock) -> SandboxServer:
    return jobmojito_sandbox_factory(clock=clock)


@pytest.fixture
def client(server: SandboxServer) -> Client:
    return Client(server)


def test_get_answers_updated_at_in_the_contracts_iso_utc_form(client: Client, clock: ManualClock) -> None:
    client.server.seed([{"id": PID, "status": "active"}])
    body = client.get().json()
    assert body["updated_at"] == body["created_at"] == "2026-01-01T00:00:00.000Z"
    assert ISO_UTC_MS.fullmatch(body["updated_at"])
    assert body["status"] == "active"


def test_seeded_timestamps_are_normalised_to_milliseconds_utc(client: Client) -> None:
    client.server.seed([{"id": PID, "created_at": "2025-03-04T10:00:00+02:00", "updated_at": "2025-03-05"}])
    body = client.get().json()
    assert (body["created_at"], body["updated_at"]) == (
        "2025-03-04T08:00:00.000Z",
        "2025-03-05T00:00:00.000Z",
    )


def test_set_state_moves_updated_at_to_the_clocks_time(client: Client, clock: ManualClock) -> None:
    client.server.seed([{"id": PID}])
    clock.advance(61.25)
    assert client.set_state(PID, "active").status_code == 200
    body = client.get().json()
    assert (body["status"], body["updated_at"]) == ("active", "2026-01-01T00:01:01.250Z")
    assert body["created_at"] == "2026-01-01T00:00:00.000Z"


def test_changes_in_one_millisecond_still_get_strictly_increasing_stamps(client: Client) -> None:
    client.server.seed([{"id": PID}, {"id": OTHER_PID}])  # the clock never moves in this test
    stamps = [client.get(PID).json()["updated_at"], client.get(OTHER_PID).json()["updated_at"]]
    for position_id, status in [(PID, "active"), (OTHER_PID, "active"), (PID, "completed")]:
        assert client.set_state(position_id, status).status_code == 200
        stamps.append(client.get(position_id).json()["updated_at"])
    client.admin(OTHER_PID, {"status": "archived"})
    stamps.append(client.get(OTHER_PID).json()["updated_at"])
    assert stamps == sorted(set(stamps))
    assert stamps[-1] == "2026-01-01T00:00:00.005Z"
    assert [row["id"] for row in client.list().json()["data"]] == [OTHER_PID, PID]


def test_a_clock_stepping_back_never_moves_updated_at_back(client: Client, clock: ManualClock) -> None:
    client.server.seed([{"id": PID, "updated_at": "2026-06-01T00:00:00Z"}])
    client.set_state(PID, "active")  # the clock (January) is behind the stored stamp (June)
    assert client.get().json()["updated_at"] == "2026-06-01T00:00:00.001Z"
    clock.advance(-3600)
    client.set_state(PID, "draft")
    assert client.get().json()["updated_at"] == "2026-06-01T00:00:00.002Z"


def test_admin_status_change_moves_updated_at_without_set_state(client: Client, clock: ManualClock) -> None:
    client.server.seed([{"id": PID, "status": "active"}])
    clock.advance(10)
    response = client.admin(PID.upper(), {"status": "completed"})
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["updated_at"] == "2026-01-01T00:00:10.000Z"
    assert client.get().json()["status"] == "completed"
    # Not an API call: the request log (the client's calls) only shows the get.
    assert [entry["path"] for entry in client.server.requests_log()] == ["/functions/v1/job-interview-get"]


def test_admin_status_change_from_python(client: Client, clock: ManualClock) -> None:
    client.server.seed([{"id": PID, "status": "active"}])
    clock.advance(1)
    row = client.server.admin_set_status(PID, "archived")
    assert (row["status"], row["updated_at"]) == ("archived", "2026-01-01T00:00:01.000Z")
    assert client.server.position(PID) == row
    with pytest.raises(ValidationError):
        client.server.admin_set_status(PID, "closed")
    with pytest.raises(KeyError):
        client.server.admin_set_status(UNKNOWN_PID, "active")


@pytest.mark.parametrize(
    ("position_id", "body", "status", "name"),
    [
        (UNKNOWN_PID, {"status": "active"}, 404, None),
        ("not-a-uuid", {"status": "active"}, 404, None),
        (PID, {"status": "closed"}, 422, "status"),
        (PID, {}, 422, "status"),
        (PID, {"status": "active", "name": "x"}, 422, "name"),
        (PID, ["active"], 422, "body"),
    ],
)
def test_admin_status_change_refusals(
    client: Client, position_id: str, body: Any, status: int, name: str | None
) -> None:
    client.server.seed([{"id": PID, "status": "draft"}])
    response = client.admin(position_id, body)
    assert response.status_code == status
    assert response.json().get("name") == name
    assert client.server.position(PID)["status"] == "draft"


def test_admin_status_route_takes_only_post(client: Client) -> None:
    client.server.seed([{"id": PID}])
    response = requests.get(f"{client.server.url}/_sandbox/positions/{PID}/status", timeout=10)
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")


def _seed_statuses(server: SandboxServer, clock: ManualClock, count: int) -> list[str]:
    """``count`` positions cycling through the statuses, each a second newer than the last."""
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    for i, position_id in enumerate(ids):
        server.seed([{"id": position_id, "status": POSITION_STATUSES[i % len(POSITION_STATUSES)]}])
        clock.advance(1)
    return ids


def test_list_rows_and_pagination_follow_the_contract(client: Client, clock: ManualClock) -> None:
    ids = _seed_statuses(client.server, clock, 3)
    body = client.list().json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0, "has_more": False}
    assert [row["id"] for row in body["data"]] == ids[::-1]
    for row in body["data"]:
        assert {"id", "status", "updated_at", "created_at", "name", "type"} <= set(row)
        assert ISO_UTC_MS.fullmatch(row["updated_at"])


@pytest.mark.parametrize("status", POSITION_STATUSES)
def test_list_filters_by_each_status(client: Client, clock: ManualClock, status: str) -> None:
    ids = _seed_statuses(client.server, clock, 12)
    body = client.list(status=status).json()
    expected = [pid for i, pid in enumerate(ids) if POSITION_STATUSES[i % 6] == status][::-1]
    assert [row["id"] for row in body["data"]] == expected
    assert {row["status"] for row in body["data"]} == {status}
    assert body["pagination"]["total"] == 2


@pytest.mark.parametrize("value", ["active,draft", "ACTIVE", "", "closed"])
def test_list_status_takes_one_of_the_six_values_only(client: Client, value: str) -> None:
    # The contract types `status` as one string from the enum: no lists, no other spelling.
    response = client.list(status=value)
    assert response.status_code == 422
    assert response.json()["name"] == "status"


def test_list_orders_by_the_latest_change_whoever_made_it(client: Client, clock: ManualClock) -> None:
    ids = _seed_statuses(client.server, clock, 4)
    client.set_state(ids[1], "active")
    clock.advance(1)
    client.server.admin_set_status(ids[0], "completed")
    assert [row["id"] for row in client.list().json()["data"]] == [ids[0], ids[1], ids[3], ids[2]]
    assert [row["id"] for row in client.list(status="completed").json()["data"]] == [ids[0]]


def test_list_pages_with_limit_and_offset(client: Client, clock: ManualClock) -> None:
    ids = _seed_statuses(client.server, clock, 7)[::-1]
    seen: list[str] = []
    offset = 0
    while True:
        page = client.list(limit=3, offset=offset).json()
        assert page["pagination"]["limit"] == 3
        assert page["pagination"]["offset"] == offset
        assert page["pagination"]["total"] == 7
        seen += [row["id"] for row in page["data"]]
        assert page["pagination"]["has_more"] == (offset + len(page["data"]) < 7)
        if not page["pagination"]["has_more"]:
            break
        offset += 3
    assert seen == ids
    beyond = client.list(offset=100).json()
    assert beyond == {"data": [], "pagination": {"total": 7, "limit": 50, "offset": 100, "has_more": False}}


@pytest.mark.parametrize(
    ("limit", "status"), [("1", 200), ("1000", 200), ("0", 422), ("1001", 422), ("-1", 422)]
)
def test_list_limit_is_1_to_1000(client: Client, limit: str, status: int) -> None:
    response = client.list(limit=limit)
    assert response.status_code == status
    if status == 422:
        assert response.json() == {"error": "Must be an integer between 1 and 1000.", "name": "limit"}


def test_list_offset_below_zero_is_422(client: Client) -> None:
    assert client.list(offset=-1).json() == {
        "error": "Must be an integer between 0 and 9223372036854775807.",
        "name": "offset",
    }


def test_every_answer_is_dated_by_the_sandbox_clock(client: Client, clock: ManualClock) -> None:
    # The API's time, as a client judging changes reads it: the clock the timestamps follow.
    assert client.list().headers["Date"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    clock.advance(90.7)  # HTTP dates are whole seconds
    assert client.list().headers["Date"] == "Thu, 01 Jan 2026 00:01:30 GMT"
    refused = requests.get(f"{client.server.api_url}/merchant-interview-list", timeout=10)
    assert (refused.status_code, refused.headers["Date"]) == (401, "Thu, 01 Jan 2026 00:01:30 GMT")
    client.server.add_fault("status", status=503)
    assert client.get().headers["Date"] == "Thu, 01 Jan 2026 00:01:30 GMT"


def test_a_change_between_two_pages_shifts_the_next_page_past_a_row(client: Client) -> None:
    # What a listing by offsets meets: a row of page 1 leaves the status before page 2 is read,
    # the rows after it move up one place, and page 2 starts one row too far.
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(5)]
    client.server.seed(
        [{"id": pid, "status": "completed", "updated_at": f"2025-01-0{n + 1}"} for n, pid in enumerate(ids)]
    )
    newest_first = ids[::-1]
    client.server.add_fault(
        "change", path=LIST, query={"offset": 2}, position_id=newest_first[0], position_status="archived"
    )
    first = [row["id"] for row in client.list(status="completed", limit=2).json()["data"]]
    second = [row["id"] for row in client.list(status="completed", limit=2, offset=2).json()["data"]]
    assert client.server.position(newest_first[0])["status"] == "archived"
    assert first == newest_first[:2]
    assert second == newest_first[3:]  # newest_first[2] moved up to page 1, already read: skipped
