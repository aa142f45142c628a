"""JobMojitoHook against the sandbox, over real HTTP: calls, errors and retries."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowNotFoundException

from airflow_provider_jobmojito import __version__
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoError,
    JobMojitoServerError,
    JobMojitoUnavailableError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import StateChange

POSITION = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"
SET_STATE = "/functions/v1/job-interview-set-state"


@pytest.fixture
def sandbox(jobmojito_sandbox: Any) -> Any:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft", "name": "Data engineer"}])
    return jobmojito_sandbox


@pytest.fixture
def hook(sandbox: Any, jobmojito_conn: Any) -> JobMojitoHook:
    return JobMojitoHook(jobmojito_conn())


def set_state_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests_log() if r["path"] == SET_STATE]


class TestSetInterviewState:
    def test_changes_the_status_and_returns_the_api_answer(self, hook: JobMojitoHook, sandbox: Any) -> None:
        assert hook.set_interview_state(POSITION, status="archived") == {"success": True}
        assert sandbox.position(POSITION)["status"] == "archived"

    def test_accepts_the_status_enum_and_sends_only_what_changes(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        hook.set_interview_state(POSITION, status=InterviewStatus.ACTIVE)
        assert set_state_calls(sandbox)[0]["json"] == {"position_id": POSITION, "status": "active"}

    def test_sends_the_position_id_in_canonical_lower_case(self, hook: JobMojitoHook, sandbox: Any) -> None:
        hook.set_interview_state(POSITION.upper().replace("-", ""), status="active")
        assert set_state_calls(sandbox)[0]["json"]["position_id"] == POSITION

    def test_changes_status_and_embedding_in_one_call(self, hook: JobMojitoHook, sandbox: Any) -> None:
        answer = hook.set_interview_state(POSITION, status="active", is_embedded=True)
        assert set(answer) == {"embed_id", "embed_signing_key"}
        assert len(set_state_calls(sandbox)) == 1
        assert sandbox.position(POSITION)["status"] == "active"


class TestEmbedding:
    def test_enabling_returns_the_keys_and_again_the_same_keys(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        first = hook.enable_embedding(POSITION)
        assert first == hook.enable_embedding(POSITION)
        assert sandbox.position(POSITION)["embed_id"] == first["embed_id"]

    def test_disabling_deletes_the_keys_and_enabling_again_makes_new_ones(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        first = hook.enable_embedding(POSITION)
        assert hook.disable_embedding(POSITION) == {"success": True}
        assert sandbox.position(POSITION)["embed_id"] is None
        assert hook.enable_embedding(POSITION)["embed_id"] != first["embed_id"]

    def test_embed_url_is_built_from_the_embed_base_url(self, sandbox: Any, jobmojito_conn: Any) -> None:
        default = JobMojitoHook(jobmojito_conn())
        assert default.embed_url("e-1") == "https://try.interviewmojito.com/embed?embed_id=e-1"
        custom = JobMojitoHook(jobmojito_conn(), embed_base_url="https://careers.example.com/embed/")
        assert custom.embed_url("a b") == "https://careers.example.com/embed?embed_id=a+b"

    def test_an_embed_answer_without_its_signing_key_is_an_error_not_a_key_error(
        self, canned_answer: tuple[str, list[bytes]], jobmojito_conn: Any
    ) -> None:
        url, answer = canned_answer
        answer[0] = b'{"embed_id": "e-1"}'
        with pytest.raises(JobMojitoError, match="did not send both embed_id and embed_signing_key"):
            JobMojitoHook(jobmojito_conn(host=url)).enable_embedding(POSITION)


class TestReads:
    def test_get_interview_reads_one_definition(self, hook: JobMojitoHook) -> None:
        assert hook.get_interview(POSITION)["status"] == "draft"

    def test_list_interviews_passes_query_parameters(self, hook: JobMojitoHook, sandbox: Any) -> None:
        answer = hook.list_interviews(status="draft", limit=10)
        assert [row["id"] for row in answer["data"]] == [POSITION]
        assert sandbox.requests_log()[-1]["query"] == {"status": "draft", "limit": "10"}

    def test_iter_interview_pages_reads_every_page_one_at_a_time(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        sandbox.seed([{"id": str(uuid.uuid4()), "status": "active"} for _ in range(5)])
        pages = list(hook.iter_interview_pages(page_size=2, status="active"))
        assert [len(page["data"]) for page in pages] == [2, 2, 1]
        offsets = [r["query"]["offset"] for r in sandbox.requests_log() if r["path"].endswith("-list")]
        assert offsets == ["0", "2", "4"]

    def test_aiter_interview_pages_stopped_early_reads_no_further(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        sandbox.seed([{"id": str(uuid.uuid4()), "status": "active"} for _ in range(4)])

        async def first_page() -> dict[str, Any]:
            try:
                async for page in hook.aiter_interview_pages(page_size=2):
                    return page
                raise AssertionError("no page")
            finally:
                await hook.aclose()

        assert len(asyncio.run(first_page())["data"]) == 2
        assert sum(r["path"].endswith("-list") for r in sandbox.requests_log()) == 1

    def test_the_dated_pagers_give_each_page_as_the_api_sent_it_with_the_apis_time(
        self, jobmojito_sandbox_factory: Any, jobmojito_conn: Any
    ) -> None:
        from airflow_provider_jobmojito.sandbox import ManualClock

        clock = ManualClock(1_600_000_000.0)  # not this machine's time: the API's
        server = jobmojito_sandbox_factory(clock=clock)
        server.seed([{"id": str(uuid.uuid4()), "status": "active"} for _ in range(3)])
        hook = JobMojitoHook(jobmojito_conn(host=server.api_url, password=server.issue_token()))
        plain = list(hook.iter_interview_pages(page_size=2))
        dated = list(hook.iter_dated_interview_pages(page_size=2))

        async def read() -> list[Any]:
            try:
                clock.advance(61)
                return [page async for page in hook.aiter_dated_interview_pages(page_size=2)]
            finally:
                await hook.aclose()

        later = asyncio.run(read())
        assert [page.body for page in dated] == [page.body for page in later] == plain
        assert [page.date for page in dated] == [1_600_000_000.0] * 2
        assert [page.date for page in later] == [1_600_000_061.0] * 2


class TestArguments:
    def test_an_unknown_keyword_argument_is_a_type_error_naming_it_and_the_known_ones(self) -> None:
        with pytest.raises(TypeError, match=r"'timout'.*timeout, max_retries"):
            JobMojitoHook(timout=5)

    def test_1_0_0s_bulk_arguments_of_apply_still_work_with_a_deprecation_warning(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        keys: list[str] = []
        with pytest.warns(DeprecationWarning, match="apply"):
            answer = hook.apply(StateChange.build(POSITION, None, True), stop=None, mask_key=keys.append)
        assert keys == [answer["embed_signing_key"]]


class TestSession:
    def test_one_session_is_reused_with_keep_alive(self, hook: JobMojitoHook) -> None:
        session = hook.get_conn()
        for _ in range(3):
            hook.set_interview_state(POSITION, status="active")
        assert hook.get_conn() is session
        pools = session.get_adapter(hook.base_url).poolmanager.pools
        assert [pools[key].num_connections for key in pools.keys()] == [1]  # noqa: SIM118

    def test_user_agent_names_the_provider_and_its_version(self, hook: JobMojitoHook, sandbox: Any) -> None:
        hook.set_interview_state(POSITION, status="active")
        headers = {k.lower(): v for k, v in set_state_calls(sandbox)[0]["headers"].items()}
        assert headers["user-agent"].startswith(f"airflow-provider-jobmojito/{__version__} ")

    def test_constructing_the_hook_reads_no_connection(self) -> None:
        # No connection "nowhere" exists: a lookup at construction time would raise.
        hook = JobMojitoHook("nowhere")
        with pytest.raises(AirflowNotFoundException, match="nowhere"):
            hook.settings  # noqa: B018 - the first use is what reads the connection

    def test_settings_repr_shows_neither_password_nor_anon_key(self, jobmojito_conn: Any) -> None:
        conn_id = jobmojito_conn(password="pw-in-repr-test", extra={"supabase_anon_key": "anon-in-repr-test"})
        text = repr(JobMojitoHook(conn_id).settings)
        assert "pw-in-repr-test" not in text
        assert "anon-in-repr-test" not in text


class TestBadInputIsRefusedBeforeSending:
    @pytest.mark.parametrize(
        ("kwargs", "names"),
        [
            ({"position_id": "not-a-uuid", "status": "active"}, ["position_id", "UUID"]),
            ({"position_id": 42, "status": "active"}, ["position_id"]),
            ({"position_id": "", "status": "active"}, ["position_id"]),
            # uuid.UUID() reads these as other, valid ids: 35 digits and a newline, a leading +.
            ({"position_id": POSITION[:-1] + "\n", "status": "active"}, ["position_id", "UUID"]),
            ({"position_id": "+" + POSITION[1:], "status": "active"}, ["position_id", "UUID"]),
            ({"position_id": f" {POSITION}", "status": "active"}, ["position_id", "UUID"]),
            ({"position_id": POSITION, "status": "actve"}, ["status", "draft, active, archived"]),
            ({"position_id": POSITION, "status": "ACTIVE"}, ["status"]),
            ({"position_id": POSITION, "is_embedded": "yes"}, ["is_embedded", "True, False"]),
            ({"position_id": POSITION, "is_embedded": 1}, ["is_embedded"]),
            ({"position_id": POSITION}, ["status", "is_embedded"]),
        ],
    )
    def test_raises_value_error_naming_the_parameter(
        self, hook: JobMojitoHook, sandbox: Any, kwargs: dict[str, Any], names: list[str]
    ) -> None:
        with pytest.raises(ValueError, match=names[0]) as raised:
            hook.set_interview_state(**kwargs)
        for name in names:
            assert name in str(raised.value)
        assert sandbox.requests_log() == []


class TestErrors:
    def test_unknown_position_is_a_server_error_that_explains_the_500(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        with pytest.raises(JobMojitoServerError, match=r"position id it does not know") as raised:
            hook.set_interview_state(str(uuid.uuid4()), status="active")
        assert raised.value.status_code == 500
        assert raised.value.error
        assert not isinstance(raised.value, AirflowFailException)
        assert len(set_state_calls(sandbox)) == 1  # a 500 is not retried by the hook

    def test_validation_error_names_the_field_and_is_not_retried_by_airflow(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        sandbox.add_fault(kind="status", status=422, count=1, body={"error": "Bad status.", "name": "status"})
        with pytest.raises(JobMojitoValidationError) as raised:
            hook.set_interview_state(POSITION, status="active")
        assert (raised.value.status_code, raised.value.field, raised.value.error) == (
            422,
            "status",
            "Bad status.",
        )
        assert "status" in str(raised.value)
        assert isinstance(raised.value, AirflowFailException)

    def test_refused_token_is_an_auth_error_without_retries(self, sandbox: Any, jobmojito_conn: Any) -> None:
        hook = JobMojitoHook(jobmojito_conn(password="opaque-token-the-api-does-not-know"))
        with pytest.raises(JobMojitoAuthError) as raised:
            hook.set_interview_state(POSITION, status="active")
        assert raised.value.status_code == 401
        assert isinstance(raised.value, AirflowFailException)
        # An opaque token is sent as it is: the API, not the hook, refused it.
        assert len(set_state_calls(sandbox)) == 1

    def test_forbidden_is_an_auth_error(self, hook: JobMojitoHook, sandbox: Any) -> None:
        sandbox.add_fault(kind="status", status=403, count=1, body={"error": "Not a merchant."})
        with pytest.raises(JobMojitoAuthError, match="Not a merchant"):
            hook.set_interview_state(POSITION, status="active")

    def test_an_answer_that_is_not_json_is_reported_without_its_body(
        self, hook: JobMojitoHook, sandbox: Any
    ) -> None:
        sandbox.add_fault(kind="status", status=500, count=1, body="<html>proxy error SECRETBODY</html>")
        with pytest.raises(JobMojitoServerError) as raised:
            hook.set_interview_state(POSITION, status="active")
        assert "SECRETBODY" not in str(raised.value)


def record_waits(hook: JobMojitoHook) -> list[float]:
    """Make the hook's retries record their waits instead of sleeping."""
    waits: list[float] = []

    def wait(seconds: float, stop: Any) -> bool:
        waits.append(seconds)
        return False

    hook.client.wait = wait
    return waits


class TestRetries:
    @pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
    def test_transient_answers_are_retried_until_success(
        self, sandbox: Any, jobmojito_conn: Any, status: int
    ) -> None:
        sandbox.add_fault(kind="status", status=status, count=2)
        hook = JobMojitoHook(jobmojito_conn())
        assert hook.set_interview_state(POSITION, status="archived") == {"success": True}
        assert [r["status"] for r in set_state_calls(sandbox)] == [status, status, 200]
        assert sandbox.position(POSITION)["status"] == "archived"

    def test_gives_up_after_exactly_max_retries_plus_one_attempts(
        self, sandbox: Any, jobmojito_conn: Any
    ) -> None:
        sandbox.add_fault(kind="status", status=503, count=10)
        hook = JobMojitoHook(jobmojito_conn(), max_retries=3)
        with pytest.raises(JobMojitoUnavailableError, match="4 attempt") as raised:
            hook.set_interview_state(POSITION, status="archived")
        assert raised.value.status_code == 503
        assert not isinstance(raised.value, AirflowFailException)
        assert len(set_state_calls(sandbox)) == 4
        assert sandbox.position(POSITION)["status"] == "draft"

    def test_default_is_five_retries(self, sandbox: Any, jobmojito_conn: Any) -> None:
        sandbox.add_fault(kind="status", status=502, count=10)
        with pytest.raises(JobMojitoUnavailableError):
            JobMojitoHook(jobmojito_conn(), backoff_max=0).set_interview_state(POSITION, status="active")
        assert len(set_state_calls(sandbox)) == 6

    def test_retry_after_in_seconds_is_honoured(self, sandbox: Any, jobmojito_conn: Any) -> None:
        sandbox.add_fault(kind="status", status=429, count=1, retry_after="7")
        hook = JobMojitoHook(jobmojito_conn(), backoff_max=60)
        waits = record_waits(hook)
        hook.set_interview_state(POSITION, status="active")
        assert waits == [7.0]
        assert len(set_state_calls(sandbox)) == 2

    def test_retry_after_as_an_http_date_is_honoured(self, sandbox: Any, jobmojito_conn: Any) -> None:
        from datetime import UTC, datetime, timedelta
        from email.utils import format_datetime

        when = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
        sandbox.add_fault(kind="status", status=503, count=1, retry_after=format_datetime(when, usegmt=True))
        hook = JobMojitoHook(jobmojito_conn(), backoff_max=60)
        waits = record_waits(hook)
        hook.set_interview_state(POSITION, status="active")
        # The retry waits until the date itself: what is left of the 20 s when the answer came.
        [wait] = waits
        assert 0 < wait <= 20
        assert len(set_state_calls(sandbox)) == 2

    def test_retry_after_longer_than_backoff_max_ends_the_retries(
        self, sandbox: Any, jobmojito_conn: Any
    ) -> None:
        sandbox.add_fault(kind="status", status=429, count=1, retry_after="120")
        hook = JobMojitoHook(jobmojito_conn(), backoff_max=5)
        waits = record_waits(hook)
        with pytest.raises(JobMojitoUnavailableError, match="wait 120 s") as raised:
            hook.set_interview_state(POSITION, status="active")
        assert waits == []
        assert raised.value.status_code == 429
        assert len(set_state_calls(sandbox)) == 1

    def test_dropped_connections_are_retried(self, sandbox: Any, jobmojito_conn: Any) -> None:
        sandbox.add_fault(kind="drop", count=2)
        hook = JobMojitoHook(jobmojito_conn())
        assert hook.set_interview_state(POSITION, status="completed") == {"success": True}
        assert len(set_state_calls(sandbox)) == 3
        assert sandbox.position(POSITION)["status"] == "completed"

    def test_a_slow_answer_is_abandoned_at_the_timeout(self, sandbox: Any, jobmojito_conn: Any) -> None:
        sandbox.add_fault(kind="delay", seconds=30, count=1)
        hook = JobMojitoHook(jobmojito_conn(), timeout=0.5, max_retries=0)
        started = time.monotonic()
        with pytest.raises(JobMojitoUnavailableError, match=r"got no answer within 0.5 s"):
            hook.set_interview_state(POSITION, status="active")
        # The property is "did not wait for the server's answer"; how close the give-up comes to
        # 0.5 s depends on the machine's load, so the bound only has to sit well below the 30 s delay.
        assert time.monotonic() - started < 15

    def test_a_slow_answer_is_retried(self, sandbox: Any, jobmojito_conn: Any) -> None:
        sandbox.add_fault(kind="delay", seconds=2, count=1)
        # Each retry has the same 0.5 s for its answer: on a loaded machine one may be late too,
        # and is retried in turn; what matters is that the slow first answer is not the end.
        hook = JobMojitoHook(jobmojito_conn(), timeout=0.5, max_retries=3)
        assert hook.set_interview_state(POSITION, status="active") == {"success": True}

    def test_an_unreachable_host_is_unavailable_after_the_retries(self, jobmojito_conn: Any) -> None:
        hook = JobMojitoHook(jobmojito_conn(host="http://127.0.0.1:9/functions/v1"), max_retries=1)
        with pytest.raises(JobMojitoUnavailableError, match="could not be reached") as raised:
            hook.set_interview_state(POSITION, status="active")
        assert raised.value.status_code is None


@pytest.fixture
def canned_answer() -> Iterator[tuple[str, list[bytes]]]:
    """A server that answers every GET and POST ``200`` with the JSON body in the list it yields."""
    body: list[bytes] = [b"{}"]

    class Canned(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body[0])))
            self.end_headers()
            self.wfile.write(body[0])

        do_GET = do_POST = answer  # the names http.server dispatches to

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/functions/v1", body
    server.shutdown()
    server.server_close()


class TestUnexpectedAnswers:
    """A 200 whose JSON is not the object every endpoint answers fails clearly, naming the call."""

    @pytest.mark.parametrize("body", [b'["not", "an", "object"]', b'"just a string"', b"null", b"42"])
    @pytest.mark.parametrize(
        "call",
        [
            lambda hook: hook.set_interview_state(POSITION, status="active"),
            lambda hook: hook.get_interview(POSITION),
            lambda hook: hook.list_interviews(limit=1),
        ],
        ids=["set-state", "get", "list"],
    )
    def test_json_that_is_not_an_object_is_a_jobmojito_error(
        self, canned_answer: tuple[str, list[bytes]], jobmojito_conn: Any, body: bytes, call: Any
    ) -> None:
        url, answer = canned_answer
        answer[0] = body
        with pytest.raises(
            JobMojitoError, match=r"answered 200 to (POST|GET) /\S+ with a JSON \w+, not an object"
        ):
            call(JobMojitoHook(jobmojito_conn(host=url)))

    def test_the_connection_test_passes_without_a_pagination_object(
        self, canned_answer: tuple[str, list[bytes]], jobmojito_conn: Any
    ) -> None:
        url, answer = canned_answer
        answer[0] = b'{"data": [], "pagination": null}'
        ok, message = JobMojitoHook(jobmojito_conn(host=url)).test_connection()
        assert ok
        assert message == f"Connected to {url}: the access token was accepted."


def test_every_error_the_package_raises_is_a_jobmojito_error_with_one_import_path() -> None:
    from airflow_provider_jobmojito import exceptions

    classes = [getattr(exceptions, name) for name in exceptions.__all__ if name != "first_of"]
    assert len(classes) == 15
    for error in classes:
        assert issubclass(error, JobMojitoError)
        assert error.__module__ == "airflow_provider_jobmojito.exceptions"
    # A bad argument fails a DAG import (ValueError) and a task without retries.
    assert issubclass(exceptions.JobMojitoArgumentError, ValueError)
    assert issubclass(exceptions.JobMojitoArgumentError, AirflowFailException)
    from airflow_provider_jobmojito import bulk

    assert not hasattr(bulk, "JobMojitoBulkError")
