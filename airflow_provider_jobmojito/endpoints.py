"""The JobMojito endpoints, one plan each: what a call sends, and what its answer must hold.

Each method returns a plan (:mod:`~airflow_provider_jobmojito.plan`) that either driver carries
out: ``client.run(endpoints.get_position(position_id))`` on a worker,
``await client.run(...)`` in the triggerer, ``client.pages(endpoints.positions_pages())`` for a
listing. Arguments are checked when the method is called, before any request. Endpoint
knowledge lives here and nowhere else: paths, the query and body of each call, what else a 500
means to set-state, the shape a set-state answer must have, how a listing pages. The update and
results endpoints (``job-interview-update``, ``merchant-result-list``, ``job-interview-details``)
are further methods of this class, on the same plans.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_provider_jobmojito.answers import scrub
from airflow_provider_jobmojito.exceptions import JobMojitoUnexpectedAnswerError
from airflow_provider_jobmojito.plan import Calls, Emit, Secret
from airflow_provider_jobmojito.results import (
    LIST_RESULTS_PATH,
    check_results_read,
    details_plan,
    result_pages,
)
from airflow_provider_jobmojito.validation import parse_position_id

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from airflow_provider_jobmojito.auth import TokenProvider
    from airflow_provider_jobmojito.plan import Plan
    from airflow_provider_jobmojito.retry import Stop
    from airflow_provider_jobmojito.settings import HookSettings
    from airflow_provider_jobmojito.validation import StateChange

SET_STATE_PATH = "job-interview-set-state"
GET_POSITION_PATH = "job-interview-get"
LIST_POSITIONS_PATH = "merchant-interview-list"

#: Rows per page of a listing: the most the API gives.
MAX_PAGE_SIZE = 1000
#: The most pages one listing reads when the API states no total (ten million rows): a list that
#: keeps answering ``has_more`` cannot page for ever.
MAX_PAGES = 10_000

_SET_STATE_SERVER_ERROR_HINT = (
    " job-interview-set-state also answers 500 for a position id it does not know and for an "
    "authorization failure: check that the position exists and that this account may change it."
)


class Endpoints:
    """The endpoints of one connection, as plans.

    :param settings: the connection's settings.
    :param tokens: gives the bearer token, and says how to sign in.
    :param log: where retries and sign-ins are logged (the hook's logger).
    """

    def __init__(self, settings: HookSettings, tokens: TokenProvider, log: Any) -> None:
        self.calls = Calls(settings, tokens, log)

    def authenticate(self, stop: Stop | None = None) -> Plan[str]:
        """Get a token now (signing in if needed), e.g. once before a bulk change's threads start."""
        return self.calls.token(stop)

    def set_state(self, change: StateChange, *, stop: Stop | None = None) -> Plan[dict[str, Any]]:
        """``POST job-interview-set-state``: one validated change; its answer, checked.

        The signing key in the answer, if any, is handed to the driver as a secret before the
        answer is returned. The call is idempotent (setting a state twice changes nothing, and
        ``is_embedded=true`` returns the existing key), so retrying it after a lost answer is safe.

        :param stop: what the calls of a bulk change share: once set, retries stop.
        :raises JobMojitoUnexpectedAnswerError: when a 2xx answer does not confirm the change.
        """
        answer = yield from self.calls.call(
            "POST",
            SET_STATE_PATH,
            json=change.body(),
            subject=f"position {change.position_id}",
            stop=stop,
            server_error_hint=_SET_STATE_SERVER_ERROR_HINT,
        )
        signing_key = answer.get("embed_signing_key")
        if isinstance(signing_key, str):
            yield Secret(signing_key)
        has_id, has_key = isinstance(answer.get("embed_id"), str), isinstance(signing_key, str)
        if has_id != has_key or (change.is_embedded is True and not has_id):
            # Callers rely on the two coming together; say so here rather than fail on a lookup.
            raise JobMojitoUnexpectedAnswerError(
                f"JobMojito switched embedding on for position {change.position_id} but did not "
                "send both embed_id and embed_signing_key."
            )
        if answer.get("success") is not True and not has_id:
            # A 200 {"error": ...} from a proxy or a changed API must not pass for a change made.
            shape = _shape_of(answer, self.calls.secrets())
            raise JobMojitoUnexpectedAnswerError(
                f"JobMojito answered POST /{SET_STATE_PATH} for position {change.position_id} without "
                f"confirming the change (it sent {shape}); the change may or may not have been made: "
                "check the position.",
            )
        return answer

    def get_position(self, position_id: str) -> Plan[dict[str, Any]]:
        """``GET job-interview-get``: one interview or position definition.

        :param position_id: the interview or position id (a UUID); ``ValueError`` if it is not one.
        """
        params = {"position_id": parse_position_id(position_id)}
        return self.calls.call("GET", GET_POSITION_PATH, params=params)

    def list_positions(self, **filters: str | int) -> Plan[dict[str, Any]]:
        """``GET merchant-interview-list``: one page, ``{"data": [...], "pagination": {...}}``.

        :param filters: the endpoint's query parameters (``status``, ``type``, ``limit``, ``offset``...).
        """
        return self.calls.call("GET", LIST_POSITIONS_PATH, params=filters)

    def positions_pages(self, *, page_size: int = MAX_PAGE_SIZE, **filters: str | int) -> Plan[None]:
        """Every page of ``merchant-interview-list``, emitted one at a time (one page in memory).

        Pages until a page is empty or ``has_more`` is not true, and never past what the API says
        there is: the pages its ``total`` needs and one more (for rows added meanwhile), at most
        :data:`MAX_PAGES`; an API that answers the same page whatever the offset is caught at the
        second page.

        :param page_size: rows per page, 1 to :data:`MAX_PAGE_SIZE`.
        :param filters: the endpoint's filters (``status``, ``type``...), not ``limit``/``offset``.
        :raises ValueError: for a bad ``page_size`` or a paging parameter among ``filters``.
        :raises JobMojitoUnexpectedAnswerError: when the API keeps saying there is more.
        """
        self._check_paging(page_size, filters)
        return self._pages(page_size, filters, dated=False)

    def dated_positions_pages(self, *, page_size: int = MAX_PAGE_SIZE, **filters: str | int) -> Plan[None]:
        """:meth:`positions_pages`, each page emitted as a :class:`~airflow_provider_jobmojito.plan.Dated`:
        the page as the API gives it (``body``) and when the API answered it (``date``, from its
        ``Date`` header), for a caller that judges changes in the API's time.

        Same arguments, bounds and errors as :meth:`positions_pages`.
        """
        self._check_paging(page_size, filters)
        return self._pages(page_size, filters, dated=True)

    @staticmethod
    def _check_paging(page_size: int, filters: dict[str, str | int]) -> None:
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= MAX_PAGE_SIZE
        ):
            raise ValueError(
                f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}; got {page_size!r}."
            )
        if paging := sorted({"limit", "offset"} & filters.keys()):
            raise ValueError(f"positions_pages sets {' and '.join(paging)} itself; give filters only.")

    def _pages(self, page_size: int, filters: dict[str, str | int], *, dated: bool) -> Plan[None]:
        offset, pages, bound = 0, 0, MAX_PAGES
        previous_ids: list[Any] | None = None
        while True:
            params = {"limit": page_size, "offset": offset, **filters}
            answer = yield from self.calls.call_dated("GET", LIST_POSITIONS_PATH, params=params)
            page = answer.body
            pages += 1
            yield Emit(answer if dated else page)
            rows, pagination = page.get("data"), page.get("pagination")
            rows = rows if isinstance(rows, list) else []
            pagination = pagination if isinstance(pagination, dict) else {}
            if not rows or pagination.get("has_more") is not True:
                return
            ids = [row.get("id") if isinstance(row, dict) else None for row in rows]
            total = pagination.get("total")
            if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                bound = min(MAX_PAGES, math.ceil(total / page_size) + 1)
            if pages >= bound or ids == previous_ids:
                raise JobMojitoUnexpectedAnswerError(
                    f"JobMojito GET /{LIST_POSITIONS_PATH} still said has_more after {pages} page(s) of "
                    f"{page_size}"
                    + (f" for a total of {total}" if isinstance(total, int) else "")
                    + ("; it answered the same page for another offset" if ids == previous_ids else "")
                    + ": stopped paging."
                )
            previous_ids = ids
            offset += len(rows)

    def results_pages(
        self,
        *,
        updated_after: datetime,
        updated_before: datetime | None = None,
        include_test: bool = False,
        page_size: int = MAX_PAGE_SIZE,
        **filters: Any,
    ) -> Plan[None]:
        """The results updated in ``[updated_after, updated_before)``, from ``merchant-result-list``
        newest first, each at most once: emits a list of rows per page that had any (one page in
        memory). How shifting offsets, duplicates and a lying ``has_more`` are handled:
        :mod:`~airflow_provider_jobmojito.results`.

        :param updated_after: the window's start (timezone-aware), included.
        :param updated_before: its end (timezone-aware), excluded, or ``None`` for none. Rows updated
            while the read runs are stamped after the read began: give an end at or before the
            read's start (as the export operator does) to read a window that cannot change.
        :param include_test: give test results (``is_test``) too.
        :param page_size: rows per page, 2 to 1,000.
        :param filters: the list's filters: ``type`` (a product type or a list of them, default
            ``interview``), ``tab``, ``step``, ``interview_id``, ``profile_interview_id``,
            ``merchant_id``, ``risks``, ``filter_text``, ``filter_emoji``.
        :raises ValueError: for a bad argument, before any request.
        :raises JobMojitoUnexpectedAnswerError: when the list does not advance, or keeps moving.
        """
        read = check_results_read(
            updated_after=updated_after,
            updated_before=updated_before,
            include_test=include_test,
            page_size=page_size,
            **filters,
        )
        return result_pages(self.calls, read)

    def list_results(self, **params: str | int) -> Plan[dict[str, Any]]:
        """``GET merchant-result-list``: one page, ``{"data": [...], "pagination": {...}}``.

        :param params: the endpoint's query parameters (``order_by``, ``type``, ``limit``...).
        """
        return self.calls.call("GET", LIST_RESULTS_PATH, params=params)

    def result_details(
        self, interview_result_id: str, *, signed_recordings: bool = False, stop: Stop | None = None
    ) -> Plan[dict[str, Any]]:
        """``GET job-interview-details``: one result with its transcript and AI analysis.

        :param interview_result_id: the result's ``interview_result_id`` (a UUID; not the row's ``id``).
        :param signed_recordings: ask for signed recording URLs too; each is registered with the
            secret masker before the answer is returned (they grant access to the recordings).
        :param stop: shared by the calls of one read: the breaker and the cancel.
        :raises ValueError: for an id that is not a UUID, before any request.
        """
        result_id = parse_position_id(interview_result_id, param="interview_result_id")
        if not isinstance(signed_recordings, bool):
            raise ValueError(f"signed_recordings must be True or False; got {signed_recordings!r}.")
        return details_plan(self.calls, result_id, signed_recordings=signed_recordings, stop=stop)

    def check_connection(self) -> Plan[dict[str, Any]]:
        """A read that changes nothing, with no retries: the first page of one position."""
        return self.calls.call("GET", LIST_POSITIONS_PATH, params={"limit": 1}, max_retries=0)


def _shape_of(answer: dict[str, Any], secrets: Iterable[str]) -> str:
    """The keys of an answer, and its ``error`` text scrubbed: never other values, which could be
    secret."""
    keys = ", ".join(sorted(answer)[:10]) or "no keys"
    error = scrub(answer.get("error"), secrets) if isinstance(answer.get("error"), str) else None
    text = f": error {error[:200]!r}" if error else ""
    return f"{{{keys}}}{text}"
