"""The endpoints as plans: what each call sends and what its answer must hold, with no network.

The plans are driven by hand (tests/test_plan.py's ``Script``), so paging bounds and answer checks
are asserted for both drivers at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_provider_jobmojito import endpoints as endpoints_module
from airflow_provider_jobmojito.auth import TokenProvider
from airflow_provider_jobmojito.endpoints import Endpoints
from airflow_provider_jobmojito.exceptions import JobMojitoServerError, JobMojitoUnexpectedAnswerError
from airflow_provider_jobmojito.plan import Emit, Secret
from airflow_provider_jobmojito.settings import HookSettings
from airflow_provider_jobmojito.validation import StateChange
from tests.drivers import Log
from tests.test_plan import API, Script, answer

POSITION = "6d8f0b2c-4e5a-4b7c-9d0e-1f2a3b4c5d6e"


@pytest.fixture
def endpoints() -> Endpoints:
    settings = HookSettings.resolve(host=API, login="", password="static-token-0123", extras={}, overrides={})
    return Endpoints(settings, TokenProvider(settings, "test"), Log())


def page(ids: list[str], *, has_more: bool, total: int | None = None) -> Any:
    pagination: dict[str, Any] = {"has_more": has_more, "limit": len(ids), "offset": 0}
    if total is not None:
        pagination["total"] = total
    return answer(200, {"data": [{"id": pid, "status": "active"} for pid in ids], "pagination": pagination})


def emitted(script: Script) -> list[Any]:
    return [step.item for step in script.steps if isinstance(step, Emit)]


class TestSetState:
    def test_sends_only_what_changes(self, endpoints: Endpoints) -> None:
        script = Script([answer(200, {"success": True})])
        script.run(endpoints.set_state(StateChange.build(POSITION, "archived")))
        [send] = script.sent()
        assert (send.request.method, send.request.body) == (
            "POST",
            b'{"position_id":"%s","status":"archived"}' % POSITION.encode(),
        )

    def test_a_signing_key_is_handed_over_as_a_secret_before_the_answer(self, endpoints: Endpoints) -> None:
        script = Script([answer(200, {"embed_id": "e-1", "embed_signing_key": "key-0123456789"})])
        result = script.run(endpoints.set_state(StateChange.build(POSITION, None, True)))
        assert [step.value for step in script.steps if isinstance(step, Secret)] == ["key-0123456789"]
        assert result["embed_id"] == "e-1"

    @pytest.mark.parametrize(
        "body",
        [{"error": "proxy said no"}, {"embed_id": "e-1"}, {}],
        ids=["an error in a 200", "an id without its key", "nothing"],
    )
    def test_an_answer_that_does_not_confirm_the_change_is_an_error(
        self, endpoints: Endpoints, body: dict[str, Any]
    ) -> None:
        with pytest.raises(JobMojitoUnexpectedAnswerError, match="position"):
            Script([answer(200, body)]).run(endpoints.set_state(StateChange.build(POSITION, None, True)))

    def test_a_500_says_it_may_mean_an_unknown_position(self, endpoints: Endpoints) -> None:
        with pytest.raises(JobMojitoServerError, match="position id it does not know"):
            Script([answer(500)]).run(endpoints.set_state(StateChange.build(POSITION, "active")))

    def test_a_500_of_another_endpoint_says_nothing_of_positions(self, endpoints: Endpoints) -> None:
        with pytest.raises(JobMojitoServerError) as raised:
            Script([answer(500)]).run(endpoints.get_position(POSITION))
        assert "does not know" not in str(raised.value)


class TestGetPosition:
    def test_a_bad_id_is_refused_before_any_request(self, endpoints: Endpoints) -> None:
        with pytest.raises(ValueError, match="position_id must be a UUID"):
            endpoints.get_position("not-a-uuid")


class TestPositionsPages:
    def test_pages_until_has_more_is_false(self, endpoints: Endpoints) -> None:
        script = Script([page(["a", "b"], has_more=True, total=3), page(["c"], has_more=False, total=3)])
        script.run(endpoints.positions_pages(page_size=2, status="active"))
        assert [len(item["data"]) for item in emitted(script)] == [2, 1]
        assert [send.request.url.split("?")[1] for send in script.sent()] == [
            "limit=2&offset=0&status=active",
            "limit=2&offset=2&status=active",
        ]

    def test_the_dated_pager_emits_each_page_with_its_answers_date_and_the_plain_one_the_page(
        self, endpoints: Endpoints
    ) -> None:
        def pages() -> list[Any]:
            return [
                dataclasses.replace(
                    page(["a", "b"], has_more=True, total=3),
                    headers={"Date": "Sun, 06 Dec 2026 06:08:07 GMT"},
                ),
                dataclasses.replace(
                    page(["c"], has_more=False, total=3), headers={"Date": "Sun, 06 Dec 2026 06:08:09 GMT"}
                ),
            ]

        dated, plain = Script(pages()), Script(pages())
        dated.run(endpoints.dated_positions_pages(page_size=2, status="active"))
        plain.run(endpoints.positions_pages(page_size=2, status="active"))
        assert [item.body for item in emitted(dated)] == emitted(plain)
        assert [item.date for item in emitted(dated)] == [1_796_537_287.0, 1_796_537_289.0]
        assert [send.request.url for send in dated.sent()] == [send.request.url for send in plain.sent()]
        with pytest.raises(ValueError, match="sets offset itself"):
            endpoints.dated_positions_pages(offset=5)

    def test_an_empty_page_ends_the_listing_whatever_has_more_says(self, endpoints: Endpoints) -> None:
        script = Script([page(["a"], has_more=True), page([], has_more=True)])
        script.run(endpoints.positions_pages(page_size=1))
        assert len(script.sent()) == 2

    def test_a_list_that_answers_the_same_page_for_every_offset_is_caught_at_the_second(
        self, endpoints: Endpoints
    ) -> None:
        script = Script([page(["a"], has_more=True)] * 10)
        with pytest.raises(JobMojitoUnexpectedAnswerError, match="same page for another offset"):
            script.run(endpoints.positions_pages(page_size=1))
        assert len(script.sent()) == 2

    def test_never_reads_past_the_pages_its_total_needs_and_one_more(self, endpoints: Endpoints) -> None:
        script = Script([page([f"id-{n}"], has_more=True, total=2) for n in range(10)])
        with pytest.raises(JobMojitoUnexpectedAnswerError, match="still said has_more after 3 page"):
            script.run(endpoints.positions_pages(page_size=1))
        assert len(script.sent()) == 3

    def test_without_a_total_stops_at_max_pages(
        self, endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(endpoints_module, "MAX_PAGES", 4)
        script = Script([page([f"id-{n}"], has_more=True) for n in range(10)])
        with pytest.raises(JobMojitoUnexpectedAnswerError, match="after 4 page"):
            script.run(endpoints.positions_pages(page_size=1))

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"page_size": 0}, "page_size must be a whole number from 1 to 1000"),
            ({"page_size": 1001}, "page_size must be a whole number from 1 to 1000"),
            ({"offset": 5}, "sets offset itself"),
            ({"limit": 5, "offset": 5}, "sets limit and offset itself"),
        ],
    )
    def test_bad_arguments_are_refused_before_any_request(
        self, endpoints: Endpoints, arguments: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            endpoints.positions_pages(**arguments)
