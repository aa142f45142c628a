"""JobMojitoHook.set_interview_states against the sandbox, over real HTTP: many positions at once."""

from __future__ import annotations

import pickle
import re
import signal
import threading
import uuid
from collections import Counter
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_jobmojito import masking
from airflow_provider_jobmojito.bulk import StateChangeResult
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoBulkError,
    JobMojitoError,
    JobMojitoPermanentBulkError,
    JobMojitoServerError,
    JobMojitoUnavailableError,
    JobMojitoValidationError,
)
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.sandbox import SandboxServer
from tests.conftest import logged_lines
from tests.timing import alarm_once

SET_STATE = "/functions/v1/job-interview-set-state"
SIGN_IN = "/auth/v1/token"
EMAIL, PASSWORD = "bulk@example.com", "bulk-password-that-stays-hidden"


def new_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


def seed(sandbox: Any, ids: list[str], status: str = "draft") -> None:
    sandbox.seed([{"id": position_id, "status": status} for position_id in ids])


def set_state_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests_log() if r["path"] == SET_STATE]


def spy_mask_all(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each batch of secrets registered through :func:`masking.mask_all`, in order."""
    batches: list[list[str]] = []
    real = masking.mask_all

    def spy(secrets: Any) -> None:
        batches.append(list(secrets))
        real(batches[-1])

    monkeypatch.setattr(masking, "mask_all", spy)
    return batches


@pytest.fixture
def hook(jobmojito_conn: Any) -> JobMojitoHook:
    return JobMojitoHook(jobmojito_conn())


class TestResults:
    def test_one_result_per_position_in_input_order_whatever_order_they_finish_in(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(40)
        seed(jobmojito_sandbox, ids)
        # The first three calls to arrive answer late, so others finish before them.
        jobmojito_sandbox.add_fault("delay", seconds=0.3, count=3, path=SET_STATE)
        results = hook.set_interview_states(ids, status="active", max_workers=8)
        assert [r.position_id for r in results] == ids
        assert all(r.ok and r.response == {"success": True} and r.error is None for r in results)
        finished = [call["json"]["position_id"] for call in set_state_calls(jobmojito_sandbox)]
        assert finished != ids
        assert sorted(finished) == sorted(ids)

    def test_ids_are_sent_canonical_and_results_name_them_so(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(3)
        seed(jobmojito_sandbox, ids)
        given = [ids[0].upper(), ids[1].replace("-", ""), uuid.UUID(ids[2])]
        results = hook.set_interview_states(given, status="archived")  # type: ignore[arg-type]
        assert [r.position_id for r in results] == ids
        assert sorted(c["json"]["position_id"] for c in set_state_calls(jobmojito_sandbox)) == sorted(ids)

    def test_a_thousand_changes_none_lost_none_duplicated(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(1000)
        seed(jobmojito_sandbox, ids[:500], status="active")
        seed(jobmojito_sandbox, ids[500:], status="draft")
        bystanders = new_ids(5)
        seed(jobmojito_sandbox, bystanders, status="active")

        results = hook.set_interview_states(ids, status="archived", max_workers=16)

        assert [r.position_id for r in results] == ids
        assert all(r.ok for r in results)
        expected = {position_id: "archived" for position_id in ids}
        expected.update(dict.fromkeys(bystanders, "active"))
        assert {pid: row["status"] for pid, row in jobmojito_sandbox.positions().items()} == expected
        calls = set_state_calls(jobmojito_sandbox)
        assert len(calls) == 1000
        assert Counter(c["json"]["position_id"] for c in calls) == Counter(ids)
        assert {c["status"] for c in calls} == {200}
        assert {tuple(sorted(c["json"])) for c in calls} == {("position_id", "status")}
        assert {c["json"]["status"] for c in calls} == {"archived"}

    def test_the_calls_share_one_pool_of_at_most_max_workers_keep_alive_connections(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(300)
        seed(jobmojito_sandbox, ids)
        hook.set_interview_states(ids, status="active", max_workers=16)
        pools = hook.get_conn().get_adapter(hook.base_url).poolmanager.pools
        (pool,) = (pools[key] for key in pools.keys())  # noqa: SIM118
        # A pool smaller than the number of threads would open (and drop) a connection per call.
        assert 1 <= pool.num_connections <= 16
        assert pool.num_requests == 300

    def test_no_positions_sends_nothing_and_returns_nothing(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        assert hook.set_interview_states([], status="archived") == []
        assert jobmojito_sandbox.requests_log() == []

    def test_more_workers_than_positions_is_fine(self, hook: JobMojitoHook, jobmojito_sandbox: Any) -> None:
        ids = new_ids(2)
        seed(jobmojito_sandbox, ids)
        assert all(r.ok for r in hook.set_interview_states(ids, status="active", max_workers=50))

    def test_a_result_is_frozen_and_its_repr_leaves_the_response_out(self) -> None:
        result = StateChangeResult.succeeded("id-1", {"embed_id": "e", "embed_signing_key": "SIGNING-KEY"})
        assert "SIGNING-KEY" not in repr(result)
        assert "SIGNING-KEY" not in str([result])
        with pytest.raises(AttributeError):
            result.ok = False  # type: ignore[misc]
        with pytest.raises(ValueError, match="error when not"):
            StateChangeResult("id-1", ok=False, response=None, error=None)


class TestPartialFailure:
    def test_every_position_is_attempted_and_one_error_carries_every_result(
        self,
        hook: JobMojitoHook,
        jobmojito_sandbox: Any,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        known = new_ids(20)
        seed(jobmojito_sandbox, known)
        unknown = new_ids(3)
        ids = [*known[:5], unknown[0], *known[5:12], unknown[1], *known[12:], unknown[2]]

        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(ids, status="archived", max_workers=4)

        error = raised.value
        assert [r.position_id for r in error.results] == ids
        assert [r.position_id for r in error.failed] == unknown
        assert all(isinstance(r.error, JobMojitoServerError) for r in error.failed)
        assert {r.error.status_code for r in error.failed if r.error} == {500}
        assert all(r.ok for r in error.results if r.position_id in known)
        # Every known position was changed; a 500 is not retried, so each id was sent once.
        assert {jobmojito_sandbox.position(pid)["status"] for pid in known} == {"archived"}
        assert Counter(c["json"]["position_id"] for c in set_state_calls(jobmojito_sandbox)) == Counter(ids)
        # Catchable by meaning: a JobMojito error, and a 500 is worth an Airflow retry.
        assert isinstance(error, JobMojitoError)
        assert not isinstance(error, AirflowFailException)
        assert error.status_code == 500
        message = str(error)
        assert message.startswith("3 of 23 positions failed: ")
        assert all(pid in message for pid in unknown)
        logged = "\n".join(logged_lines(capfd, caplog))
        assert "3 of 23 position(s) failed:" in logged
        assert all(f"{pid}: JobMojito answered 500" in logged for pid in unknown)

    def test_the_message_lists_ten_failures_and_counts_the_rest(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        unknown = new_ids(13)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(unknown, status="archived", max_workers=4)
        message = str(raised.value)
        assert message.startswith("13 of 13 positions failed: ")
        assert all(pid in message for pid in unknown[:10])
        assert not any(pid in message for pid in unknown[10:])
        assert "and 3 more" in message
        assert len(raised.value.failed) == 13

    def test_when_every_failure_is_permanent_airflow_does_not_retry(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(6)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault(
            "status", status=422, count=2, path=SET_STATE, body={"error": "Bad status.", "name": "status"}
        )
        with pytest.raises(JobMojitoPermanentBulkError) as raised:
            hook.set_interview_states(ids, status="active", max_workers=1)
        assert isinstance(raised.value, AirflowFailException)
        assert isinstance(raised.value, JobMojitoBulkError)
        assert [r.position_id for r in raised.value.failed] == ids[:2]
        assert all(isinstance(r.error, JobMojitoValidationError) for r in raised.value.failed)
        assert "JobMojitoValidationError 422: Bad status. (field: status)" in str(raised.value)

    def test_one_transient_failure_makes_the_whole_error_worth_a_retry(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(3)
        seed(jobmojito_sandbox, ids[:2])  # ids[2] is unknown: a 500
        jobmojito_sandbox.add_fault("status", status=422, count=1, path=SET_STATE)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(ids, status="active", max_workers=1)
        assert not isinstance(raised.value, AirflowFailException)
        assert raised.value.status_code is None  # 422 and 500: no single status

    def test_the_error_survives_pickling_with_its_results(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(2)
        seed(jobmojito_sandbox, ids[:1])
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(ids, status="active")
        copy = pickle.loads(pickle.dumps(raised.value))  # noqa: S301 - our own bytes
        assert type(copy) is type(raised.value)
        assert str(copy) == str(raised.value)
        assert [r.position_id for r in copy.failed] == [ids[1]]


class TestRetries:
    @pytest.mark.parametrize("status", [503, 429])
    def test_transient_answers_are_retried_per_position(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, status: int
    ) -> None:
        ids = new_ids(10)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("status", status=status, count=3, path=SET_STATE, retry_after="0")
        results = hook.set_interview_states(ids, status="archived", max_workers=4)
        assert all(r.ok for r in results)
        calls = set_state_calls(jobmojito_sandbox)
        assert Counter(c["status"] for c in calls) == {200: 10, status: 3}
        # Exactly one successful call per position; the three refused calls were each retried.
        assert Counter(c["json"]["position_id"] for c in calls if c["status"] == 200) == Counter(ids)
        refused = [c["json"]["position_id"] for c in calls if c["status"] == status]
        for position_id in refused:
            statuses = [c["status"] for c in calls if c["json"]["position_id"] == position_id]
            assert statuses[-1] == 200
        assert {row["status"] for row in jobmojito_sandbox.positions().values()} == {"archived"}

    def test_each_position_gets_max_retries_plus_one_attempts(
        self, jobmojito_conn: Any, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(3)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("status", status=503, count=100, path=SET_STATE)
        hook = JobMojitoHook(jobmojito_conn(), max_retries=2)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(ids, status="archived", max_workers=3)
        assert Counter(c["json"]["position_id"] for c in set_state_calls(jobmojito_sandbox)) == {
            position_id: 3 for position_id in ids
        }
        assert all(isinstance(r.error, JobMojitoUnavailableError) for r in raised.value.failed)
        assert all("3 attempt" in str(r.error) and r.position_id in str(r.error) for r in raised.value.failed)
        assert not isinstance(raised.value, AirflowFailException)
        assert {row["status"] for row in jobmojito_sandbox.positions().values()} == {"draft"}

    def test_a_dropped_connection_is_retried_within_the_bulk_call(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(8)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("drop", count=2, path=SET_STATE)
        assert all(r.ok for r in hook.set_interview_states(ids, status="completed", max_workers=4))
        assert len(set_state_calls(jobmojito_sandbox)) == 10
        assert {row["status"] for row in jobmojito_sandbox.positions().values()} == {"completed"}


class TestBadInputIsRefusedBeforeSending:
    POSITION = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"

    @pytest.mark.parametrize(
        ("kwargs", "names"),
        [
            ({"position_ids": POSITION, "status": "active"}, ["position_ids", "not one string"]),
            ({"position_ids": None, "status": "active"}, ["position_ids", "NoneType"]),
            ({"position_ids": [POSITION, "nope"], "status": "active"}, ["position_ids", "[1] 'nope'"]),
            ({"position_ids": [42, POSITION, ""], "status": "active"}, ["position_ids", "[0] 42", "[2] ''"]),
            (
                {"position_ids": [POSITION, "x", POSITION.upper()], "status": "active"},
                ["position_ids", "[1] 'x'"],
            ),
            (
                {"position_ids": [POSITION, POSITION.upper().replace("-", "")], "status": "active"},
                ["position_ids", "more than once", f"{POSITION} at 0, 1"],
            ),
            ({"position_ids": [POSITION], "status": "actve"}, ["status", "draft, active, archived"]),
            ({"position_ids": [POSITION], "is_embedded": "yes"}, ["is_embedded", "True, False"]),
            ({"position_ids": [POSITION]}, ["status", "is_embedded"]),
            ({"position_ids": [], "status": "bogus"}, ["status"]),
            ({"position_ids": [POSITION], "status": "active", "max_workers": 0}, ["max_workers", "0"]),
            ({"position_ids": [POSITION], "status": "active", "max_workers": True}, ["max_workers"]),
            ({"position_ids": [POSITION], "status": "active", "max_workers": 2.5}, ["max_workers"]),
        ],
    )
    def test_raises_value_error_naming_the_parameter(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, kwargs: dict[str, Any], names: list[str]
    ) -> None:
        jobmojito_sandbox.seed([{"id": self.POSITION, "status": "draft"}])
        with pytest.raises(ValueError, match=names[0]) as raised:
            hook.set_interview_states(**kwargs)
        for name in names:
            assert name in str(raised.value)
        assert jobmojito_sandbox.requests_log() == []

    def test_one_bad_id_among_many_stops_them_all(self, hook: JobMojitoHook, jobmojito_sandbox: Any) -> None:
        ids = new_ids(50)
        seed(jobmojito_sandbox, ids)
        with pytest.raises(ValueError, match=r"position_ids .* 1 of 51 are not: \[50\] 'not-a-uuid'"):
            hook.set_interview_states([*ids, "not-a-uuid"], status="archived")
        assert jobmojito_sandbox.requests_log() == []

    def test_an_expired_token_fails_the_call_once_without_sending(
        self, jobmojito_conn: Any, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(5)
        seed(jobmojito_sandbox, ids)
        hook = JobMojitoHook(jobmojito_conn(password=jobmojito_sandbox.issue_token(lifetime=-60)))
        with pytest.raises(JobMojitoAuthError, match="expired at"):
            hook.set_interview_states(ids, status="archived")
        assert jobmojito_sandbox.requests_log() == []


class TestSignInAndSecrets:
    def test_a_401_signs_in_again_once_and_the_batch_carries_on(self, jobmojito_conn: Any) -> None:
        with SandboxServer(email=EMAIL, password=PASSWORD) as server:
            ids = new_ids(12)
            seed(server, ids)
            conn_id = jobmojito_conn(host=server.api_url, login=EMAIL, password=PASSWORD)
            hook = JobMojitoHook(conn_id, backoff_factor=0.01)
            hook.set_interview_states(ids[:1], status="active")
            server.add_fault("status", status=401, count=1, path=SET_STATE)
            results = hook.set_interview_states(ids, status="archived", max_workers=4)
            assert all(r.ok for r in results)
            assert [r["path"] for r in server.requests_log()].count(SIGN_IN) == 2
            assert {row["status"] for row in server.positions().values()} == {"archived"}

    def test_threads_that_find_no_token_together_sign_in_once(self, jobmojito_conn: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with SandboxServer(email=EMAIL, password=PASSWORD) as server:
            ids = new_ids(8)
            seed(server, ids)
            server.add_fault("delay", seconds=0.3, count=1, path=SIGN_IN)  # a slow sign-in
            conn_id = jobmojito_conn(host=server.api_url, login=EMAIL, password=PASSWORD)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: JobMojitoHook(conn_id).set_interview_state(i, status="active"), ids))
            assert [r["path"] for r in server.requests_log()].count(SIGN_IN) == 1
            assert {row["status"] for row in server.positions().values()} == {"active"}

    def test_embed_keys_come_back_per_id_and_are_masked(
        self,
        hook: JobMojitoHook,
        jobmojito_sandbox: Any,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        ids = new_ids(6)
        seed(jobmojito_sandbox, ids)
        batches = spy_mask_all(monkeypatch)
        jobmojito_sandbox.add_fault("status", status=503, count=2, path=SET_STATE)  # logged retries

        results = hook.set_interview_states(ids, status="active", is_embedded=True, max_workers=3)

        keys = {r.position_id: r.response for r in results if r.response is not None}
        assert list(keys) == ids
        for position_id, answer in keys.items():
            assert answer["embed_id"] == jobmojito_sandbox.position(position_id)["embed_id"]
            assert answer["embed_signing_key"] == jobmojito_sandbox.position(position_id)["embed_signing_key"]
        secrets = [answer["embed_signing_key"] for answer in keys.values()]
        assert len(set(secrets)) == 6
        # Registered together, in one batch, once the positions were attempted.
        assert len(batches) == 1
        assert sorted(batches[0]) == sorted(secrets)

        # A failing batch with keys in it: neither its message, its repr nor the log shows a key.
        unknown = new_ids(1)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states([*ids, *unknown], is_embedded=True, max_workers=3)
        logged = "\n".join(logged_lines(capfd, caplog))
        shown = str(raised.value) + repr(raised.value.results) + repr(results) + logged
        assert "answered 503" in shown  # the logs really were captured
        for secret in secrets:
            assert secret not in shown


@pytest.mark.usefixtures("fresh_masker")
class TestConcurrency:
    """Concurrency paths: masking from many threads, and refused credentials mid-batch."""

    def test_every_signing_key_is_masked_when_many_threads_register_them(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        from airflow.providers.common.compat.sdk import redact

        ids = new_ids(64)
        seed(jobmojito_sandbox, ids)
        results = hook.set_interview_states(ids, is_embedded=True, max_workers=16)
        keys = [result.response["embed_signing_key"] for result in results if result.response]
        assert len(keys) == 64
        assert [redact(key) for key in keys] == ["***"] * 64

    def test_keys_of_a_failing_batch_are_masked_before_it_raises(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow.providers.common.compat.sdk import redact

        ids = new_ids(40)
        seed(jobmojito_sandbox, ids)
        batches = spy_mask_all(monkeypatch)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states([*ids, *new_ids(1)], is_embedded=True, max_workers=8)
        keys = [r.response["embed_signing_key"] for r in raised.value.results if r.response]
        assert len(keys) == 40
        assert [sorted(batch) for batch in batches] == [sorted(keys)]
        assert [redact(key) for key in keys] == ["***"] * 40

    def test_a_single_change_masks_its_key_at_once(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (position_id,) = new_ids(1)
        seed(jobmojito_sandbox, [position_id])
        hook.settings  # noqa: B018 - the connection's secrets are registered first
        batches = spy_mask_all(monkeypatch)
        masked: list[object] = []
        real = masking.mask_secret
        monkeypatch.setattr(masking, "mask_secret", lambda s, *a, **k: (masked.append(s), real(s))[1])
        key = hook.enable_embedding(position_id)["embed_signing_key"]
        assert batches == []
        assert masked == [key]  # registered alone, as soon as it was parsed

    def test_refused_credentials_stop_the_batch_instead_of_sending_every_position(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(200)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault(
            "status", status=401, count=1000, path=SET_STATE, body={"error": "Revoked."}
        )
        with pytest.raises(JobMojitoPermanentBulkError, match="200 of 200 positions failed") as raised:
            hook.set_interview_states(ids, status="active", max_workers=8)
        assert len(set_state_calls(jobmojito_sandbox)) <= 8  # at most the calls already in flight
        assert all(isinstance(result.error, JobMojitoAuthError) for result in raised.value.results)
        assert [r.position_id for r in raised.value.results] == ids


class TestStopping:
    """A bulk call stopped part-way sends nothing more and says how far it got."""

    @staticmethod
    def apply_then(hook: JobMojitoHook, after: int, action: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the hook's client run ``action`` once, right after the ``after``-th change was made."""
        lock, done = threading.Lock(), [0]
        original = hook.client.run

        def run(plan: Any, **kwargs: Any) -> Any:
            result = original(plan, **kwargs)
            if isinstance(result, dict):  # a set-state answer (getting the token returns a string)
                with lock:
                    done[0] += 1
                    if done[0] == after:
                        action()
            return result

        monkeypatch.setattr(hook.client, "run", run)

    def test_cancel_stops_sending_and_every_unsent_position_says_so(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids = new_ids(60)
        seed(jobmojito_sandbox, ids)
        self.apply_then(hook, 5, hook.cancel, monkeypatch)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(ids, status="active", max_workers=4)
        assert not isinstance(raised.value, AirflowFailException)  # running it again is safe
        results = raised.value.results
        changed = [result for result in results if result.ok]
        assert 5 <= len(changed) <= 5 + 3  # at most the calls already in flight finish
        assert len(set_state_calls(jobmojito_sandbox)) == len(changed)
        assert all("Not sent: the bulk change was cancelled" in str(r.error) for r in raised.value.failed)
        assert [result.position_id for result in results] == ids

    def test_a_cancel_while_signing_in_is_not_lost(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids = new_ids(20)
        seed(jobmojito_sandbox, ids)
        original = hook.endpoints.authenticate

        def authenticate(stop: Any = None) -> Any:
            hook.cancel()  # as an on_kill arriving while the token is fetched
            return original(stop)

        monkeypatch.setattr(hook.endpoints, "authenticate", authenticate)
        with pytest.raises(JobMojitoBulkError, match="20 of 20 positions failed"):
            hook.set_interview_states(ids, status="active")
        assert set_state_calls(jobmojito_sandbox) == []

    def test_a_cancel_stops_the_retries_of_a_call_in_flight(
        self, jobmojito_conn: Any, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(1)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("status", status=503, count=100, path=SET_STATE)
        hook = JobMojitoHook(jobmojito_conn(), max_retries=6, backoff_factor=1, backoff_max=2)
        real_wait = hook.client.wait

        def cancel_then_wait(seconds: float, stop: threading.Event | None) -> bool:
            hook.cancel()  # an on_kill arriving while the first retry waits
            return real_wait(seconds, stop)

        hook.client.wait = cancel_then_wait
        with pytest.raises(JobMojitoBulkError, match="stopped retrying: the bulk change was cancelled"):
            hook.set_interview_states(ids, status="active")
        assert len(set_state_calls(jobmojito_sandbox)) == 1  # not one of the 6 retries

    def test_a_cancel_before_the_call_does_not_stop_it(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(3)
        seed(jobmojito_sandbox, ids)
        hook.cancel()
        assert all(result.ok for result in hook.set_interview_states(ids, status="active"))

    def test_an_interrupt_in_the_calling_thread_stops_the_workers_and_reports_progress(
        self, jobmojito_conn: Any, jobmojito_sandbox: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        class TaskTimeout(Exception):
            """Stands in for Airflow's AirflowTaskTimeout."""

        def on_alarm(_signum: int, _frame: Any) -> None:
            raise TaskTimeout

        # The interrupt falls at a known point: twelve changes are made, then each of the four
        # workers meets a 503 whose Retry-After parks it (a retry wait ends early when the batch
        # stops). Without the stop, the workers would send the rest after their wait.
        retry_after = 60  # an upper bound on the signal being handled, not a race
        hook = JobMojitoHook(jobmojito_conn(), max_retries=1, backoff_max=retry_after)
        ids = new_ids(60)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("delay", seconds=0, count=12, path=SET_STATE)  # answered normally
        jobmojito_sandbox.add_fault("status", status=503, retry_after=retry_after, count=60, path=SET_STATE)
        # Airflow's execution_timeout raises from a SIGALRM handler in the task's main thread.
        previous = signal.signal(signal.SIGALRM, on_alarm)
        try:
            with (
                caplog.at_level("ERROR", logger="airflow_provider_jobmojito.bulk"),
                pytest.raises(TaskTimeout),
                alarm_once(lambda: len(set_state_calls(jobmojito_sandbox)) >= 12 + 4),
            ):
                hook.set_interview_states(ids, status="active", max_workers=4)
        finally:
            signal.signal(signal.SIGALRM, previous)
        # Once the workers' threads are gone, nothing can be sent any more.
        for thread in threading.enumerate():
            if thread.name.startswith("jobmojito-bulk-"):
                thread.join()
        assert sorted(r["status"] for r in set_state_calls(jobmojito_sandbox)) == [200] * 12 + [503] * 4
        changed = sorted(p for p, row in jobmojito_sandbox.positions().items() if row["status"] == "active")
        assert len(changed) == 12
        [report] = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_jobmojito.bulk"]
        assert "interrupted by TaskTimeout: 12 of 60 position(s) changed" in report
        # The changed ids are named, up to ten of them (more would drown the log).
        assert sum(position_id in report for position_id in changed) == 10
        assert "and 2 more), 4 failed, 44 not sent" in report


class TestBreaker:
    """An API that is plainly down stops a bulk call early; scattered failures do not."""

    def test_an_api_that_is_down_stops_the_batch_after_failures_in_a_row(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(320)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("status", status=503, count=100_000, path=SET_STATE)
        with pytest.raises(JobMojitoBulkError) as raised:
            hook.set_interview_states(ids, status="active", max_workers=16)
        # Retryable: the task's own retries take over, later.
        assert not isinstance(raised.value, AirflowFailException)
        sent = len(set_state_calls(jobmojito_sandbox))
        # The default trips at 2 x 16 failures in a row; calls already in flight finish their
        # attempt. Without the breaker: 320 x 6 = 1,920 requests.
        assert 32 <= sent <= 32 + 16
        results = raised.value.results
        assert [result.position_id for result in results] == ids
        unsent = [r for r in results if "Not sent: the API looks down" in str(r.error)]
        assert len(unsent) >= 320 - 48
        assert all(isinstance(r.error, JobMojitoUnavailableError) for r in results)
        assert "32 attempts in a row failed across the batch (the last answered 503)" in str(unsent[0].error)

    def test_failures_among_successes_do_not_trip_it(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(200)
        seed(jobmojito_sandbox, ids)
        # Three bursts of 9 failures, each below the default of 2 x 4 = 10, with successes between.
        for _ in range(3):
            jobmojito_sandbox.add_fault("status", status=503, count=9, path=SET_STATE)
            hook.set_interview_states(ids, status="active", max_workers=4)
        assert {row["status"] for row in jobmojito_sandbox.positions().values()} == {"active"}

    def test_a_threshold_of_zero_plays_every_positions_retries(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any
    ) -> None:
        ids = new_ids(5)
        seed(jobmojito_sandbox, ids)
        jobmojito_sandbox.add_fault("status", status=503, count=100_000, path=SET_STATE)
        with pytest.raises(JobMojitoBulkError, match="5 of 5 positions failed"):
            hook.set_interview_states(ids, status="active", max_workers=2, failures_in_a_row=0)
        assert len(set_state_calls(jobmojito_sandbox)) == 5 * 6

    @pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
    def test_a_bad_threshold_is_refused_before_sending(
        self, hook: JobMojitoHook, jobmojito_sandbox: Any, value: Any
    ) -> None:
        with pytest.raises(ValueError, match="failures_in_a_row must be a whole number"):
            hook.set_interview_states(new_ids(2), status="active", failures_in_a_row=value)
        assert jobmojito_sandbox.requests_log() == []


class TestSummary:
    def test_the_summary_reports_api_time_apart_from_registering_signing_keys_with_the_masker(
        self,
        hook: JobMojitoHook,
        jobmojito_sandbox: Any,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        ids = new_ids(3)
        seed(jobmojito_sandbox, ids)
        caplog.set_level("INFO")
        hook.set_interview_states(ids, is_embedded=True, max_workers=2)
        logged = "\n".join(logged_lines(capfd, caplog))
        summary = re.search(
            r"Changed (\d+) position\(s\) in (\d+\.\d\d) s of API calls; registering (\d+) signing "
            r"key\(s\) with the secret masker took (\d+\.\d\d) s\.",
            logged,
        )
        assert summary, logged
        assert (summary[1], summary[3]) == ("3", "3")
