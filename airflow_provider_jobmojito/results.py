"""Interview results, read incrementally: the window, the filters, and the pager's plan.

JobMojito's ``merchant-result-list`` has no ``updated_since`` filter and no cursor, so results
updated in a window ``[updated_after, updated_before)`` are read newest first
(``order_by=updated_at_newest``) from offset 0 until a row is older than ``updated_after``.
Offsets shift while rows change, and the pager absorbs it:

* **Overlap.** Each page after the first starts a few rows before the previous page ended: at the
  last row strictly newer than the previous page's last ``updated_at``, so the group of rows
  sharing that last timestamp is read again (at most half a page of overlap). If
  nothing moved, the page's first row is strictly newer than the previous page's last row, or
  the page holds that last row (the *anchor*). An update or a new result moves a row to the
  front, which pushes rows down (to higher offsets): the page then re-sees more rows, never
  fewer, and nothing is skipped.
* **Step back.** A page that is empty, or neither holds the anchor nor starts strictly newer
  than it, means the list moved up (rows were removed before it): rows may have been skipped, so
  the pager reads again from further back (a tenth of a page or a row, doubling), at most
  :data:`MAX_STEP_BACKS` times.
* **Deduplication in bounded memory.** Within the window a row's ``updated_at`` does not change
  during the read (an update made meanwhile stamps it at or after ``updated_before``, which drops
  it here: it belongs to the next window). Rows therefore arrive in ``updated_at`` order, and a
  cursor is enough: the oldest ``updated_at`` given so far and the ids given *at that instant*.
  A row newer than the cursor, or at the cursor with a known id, was given already. Memory: the
  rows sharing one millisecond, not the rows read.
* **Bounded.** No more pages than the API's ``total`` allows (each page advances at least half a
  page), plus the step backs; a page that repeats the previous one, or ends where it ended, is a
  list that does not advance: the read stops with an error instead of looping on ``has_more``.

Rows without a readable ``updated_at`` (nor ``created_at``) cannot be placed in any window: they
are left out and counted in one warning. Test results (``is_test``) are left out unless asked
for. Deletions leave no trace in the API, so a read never reports them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_jobmojito.exceptions import JobMojitoUnexpectedAnswerError
from airflow_provider_jobmojito.plan import Emit, Secret
from airflow_provider_jobmojito.validation import parse_position_id

if TYPE_CHECKING:
    from airflow_provider_jobmojito.plan import Calls, Plan
    from airflow_provider_jobmojito.retry import Stop

LIST_RESULTS_PATH = "merchant-result-list"
RESULT_DETAILS_PATH = "job-interview-details"
#: Product types ``merchant-result-list`` lists (``type``), as the contract's enum.
RESULT_TYPES = ("interview", "coaching", "assessment", "public_avatar", "persona", "persona_interview")
#: ``tab`` values (the empty string: every tab).
RESULT_TABS = (
    "decided-rejected",
    "undecided",
    "shortlist",
    "decided-selected",
    "completed",
    "incomplete",
    "archived-interview",
    "public_avatar",
    "archived-public_avatar",
    "",
)
#: ``step`` values.
RESULT_STEPS = ("pre-screening", "interview")
#: Filters of ``merchant-result-list`` taking a UUID.
_UUID_FILTERS = ("interview_id", "profile_interview_id", "merchant_id")
#: Filters taking free text.
_TEXT_FILTERS = ("risks", "filter_text", "filter_emoji")
#: Every filter a results read accepts (``order_by``, ``limit`` and ``offset`` are its own).
RESULT_FILTERS = ("type", "tab", "step", *_UUID_FILTERS, *_TEXT_FILTERS)
#: Times a read steps back when the list moved up under it, before it gives up.
MAX_STEP_BACKS = 50
#: Pages in a row that bring nothing past the previous one before a read gives up.
MAX_STALE_PAGES = 3
#: Rows per page: the most ``merchant-result-list`` gives.
MAX_RESULT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class ResultWindow:
    """Results updated at or after ``after`` and before ``before`` (``None``: no upper bound).

    :param after: timezone-aware.
    :param before: timezone-aware and later than ``after``, or ``None``.
    """

    after: datetime
    before: datetime | None = None

    @classmethod
    def of(cls, updated_after: object, updated_before: object = None) -> ResultWindow:
        """A checked window; ``ValueError`` naming the parameter otherwise."""
        if not isinstance(updated_after, datetime) or updated_after.utcoffset() is None:
            raise ValueError(
                f"updated_after must be a timezone-aware datetime (e.g. the data interval's start); "
                f"got {updated_after!r}."
            )
        if updated_before is not None and (
            not isinstance(updated_before, datetime) or updated_before.utcoffset() is None
        ):
            raise ValueError(
                f"updated_before must be a timezone-aware datetime or None; got {updated_before!r}."
            )
        if updated_before is not None and updated_before <= updated_after:
            raise ValueError(
                f"updated_before ({updated_before.isoformat()}) must be later than updated_after "
                f"({updated_after.isoformat()})."
            )
        return cls(updated_after, updated_before)

    def holds(self, moment: datetime) -> bool:
        """Whether ``moment`` is in the window."""
        return moment >= self.after and (self.before is None or moment < self.before)


def check_result_filters(filters: Mapping[str, object]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The types to read and the other filters, checked; ``ValueError`` naming the filter otherwise.

    :param filters: ``type`` (one product type, or a list of them: each is read in turn; default
        ``interview``), ``tab``, ``step``, ``interview_id``, ``profile_interview_id``,
        ``merchant_id``, ``risks``, ``filter_text``, ``filter_emoji``.
    """
    unknown = sorted(set(filters) - set(RESULT_FILTERS))
    if unknown:
        own = {"order_by", "limit", "offset"} & set(unknown)
        why = " (the read sets order_by, limit and offset itself)" if own else ""
        raise ValueError(
            f"Unknown results filter(s) {', '.join(unknown)}{why}; allowed: {', '.join(RESULT_FILTERS)}."
        )
    given = filters.get("type", "interview")
    types = (given,) if isinstance(given, str) else tuple(given) if isinstance(given, Sequence) else None
    if not types or any(t not in RESULT_TYPES for t in types) or len(set(types)) != len(types):
        raise ValueError(
            f"type must be one of {', '.join(RESULT_TYPES)}, or a list of distinct ones; got {given!r}."
        )
    checked: dict[str, str] = {}
    for name, choices in (("tab", RESULT_TABS), ("step", RESULT_STEPS)):
        if name in filters:
            value = filters[name]
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
            checked[name] = str(value)
    for name in _UUID_FILTERS:
        if name in filters:
            checked[name] = parse_position_id(filters[name], param=name)
    for name in _TEXT_FILTERS:
        if name in filters:
            value = filters[name]
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string; got {value!r}.")
            checked[name] = value
    return types, checked


def check_result_page_size(page_size: object) -> int:
    """``page_size`` if it is a whole number from 2 to 1,000 (a page of one row cannot overlap)."""
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not 2 <= page_size <= MAX_RESULT_PAGE_SIZE
    ):
        raise ValueError(
            f"page_size must be a whole number from 2 to {MAX_RESULT_PAGE_SIZE}; got {page_size!r}."
        )
    return page_size


@dataclass(frozen=True)
class ResultsRead:
    """A checked windowed read: what :func:`check_results_read` gives."""

    window: ResultWindow
    types: tuple[str, ...]
    filters: dict[str, str]
    include_test: bool
    page_size: int


def check_results_read(
    *,
    updated_after: object,
    updated_before: object = None,
    include_test: object = False,
    page_size: object = MAX_RESULT_PAGE_SIZE,
    **filters: object,
) -> ResultsRead:
    """Check every argument of a windowed read; ``ValueError`` naming the first bad one."""
    window = ResultWindow.of(updated_after, updated_before)
    if not isinstance(include_test, bool):
        raise ValueError(f"include_test must be True or False; got {include_test!r}.")
    types, checked = check_result_filters(filters)
    return ResultsRead(window, types, checked, include_test, check_result_page_size(page_size))


def updated_at_of(row: Mapping[str, Any]) -> datetime | None:
    """When a row was last updated (``updated_at``, else ``created_at``), or ``None`` if unreadable."""
    for name in ("updated_at", "created_at"):
        value = row.get(name)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            if moment.utcoffset() is not None:
                return moment
    return None


class _Cursor:
    """What a read has given so far, in bounded memory: the oldest ``updated_at`` given, and the
    ids given at exactly that instant (see the module's notes)."""

    def __init__(self) -> None:
        self.moment: datetime | None = None
        self.ids: set[Any] = set()

    def first_sight(self, moment: datetime, row_id: Any) -> bool:
        """Whether the row is new to this read (and remember it if so)."""
        if self.moment is not None and (
            moment > self.moment or (moment == self.moment and row_id in self.ids)
        ):
            return False
        if self.moment is None or moment < self.moment:
            self.moment, self.ids = moment, set()
        self.ids.add(row_id)
        return True


@dataclass
class _Listing:
    """The state of one type's read between pages."""

    offset: int = 0
    anchor_id: Any = None
    anchor_moment: datetime | None = None
    step_back: int = 0
    step_backs: int = 0
    stale: int = 0
    previous_ids: list[Any] | None = None
    unplaced: int = 0


def result_pages(calls: Calls, read: ResultsRead) -> Plan[None]:
    """The plan of a windowed read: emits, per page that had any, the list of rows to give."""
    for type_ in read.types:
        yield from _type_pages(
            calls,
            window=read.window,
            type_=type_,
            filters=read.filters,
            include_test=read.include_test,
            page_size=read.page_size,
        )


def _type_pages(
    calls: Calls,
    *,
    window: ResultWindow,
    type_: str,
    filters: dict[str, str],
    include_test: bool,
    page_size: int,
) -> Plan[None]:
    state, cursor = _Listing(), _Cursor()
    pages, bound = 0, None
    while True:
        params = {"type": type_, "order_by": "updated_at_newest", "limit": page_size, "offset": state.offset}
        page = yield from calls.call("GET", LIST_RESULTS_PATH, params={**params, **filters})
        pages += 1
        rows, pagination = page.get("data"), page.get("pagination")
        rows = [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
        pagination = pagination if isinstance(pagination, dict) else {}
        total = pagination.get("total")
        if bound is None and isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            # Each page advances at least half a page; step backs and a re-read of the last come on top.
            bound = math.ceil(total / (page_size // 2)) + 2 + MAX_STEP_BACKS
        stamped = [(updated_at_of(row), row) for row in rows]
        if _moved_up(state, stamped):
            _step_back(state, page_size, type_)
            continue
        state.step_back = 0
        kept, done = [], False
        for moment, row in stamped:
            if moment is None:
                state.unplaced += 1
                continue
            if moment < window.after:
                done = True  # newest first: every row from here on is older still
                break
            if window.before is not None and moment >= window.before:
                continue
            if cursor.first_sight(moment, row.get("id")) and (include_test or row.get("is_test") is not True):
                kept.append(row)
        if kept:
            yield Emit(kept)
        if done or not rows or pagination.get("has_more") is not True:
            break
        _advance(state, stamped, type_=type_, page_size=page_size, pages=pages, bound=bound)
    if state.unplaced:
        calls.log.warning(
            "JobMojito GET /%s (type %s) gave %d row(s) without a readable updated_at or created_at; "
            "they fit no window and were left out.",
            LIST_RESULTS_PATH,
            type_,
            state.unplaced,
        )


def _moved_up(state: _Listing, stamped: list[tuple[datetime | None, dict[str, Any]]]) -> bool:
    """Whether a page after the first skipped rows: it is empty, or neither holds the previous
    page's last row nor starts strictly newer than it."""
    if state.offset == 0 or state.anchor_moment is None:
        return False
    if not stamped:
        # Where the anchor's group should be, after a page that said has_more: the list shrank
        # under the read (rows left it, e.g. a tab filter), not its end.
        return True
    if any(row.get("id") == state.anchor_id for _, row in stamped):
        return False
    first = next((moment for moment, _ in stamped if moment is not None), None)
    return first is None or first <= state.anchor_moment


def _step_back(state: _Listing, page_size: int, type_: str) -> None:
    state.step_backs += 1
    if state.step_backs > MAX_STEP_BACKS:
        raise JobMojitoUnexpectedAnswerError(
            f"JobMojito GET /{LIST_RESULTS_PATH} (type {type_}) kept moving rows up under the read "
            f"({MAX_STEP_BACKS} step backs): stopped paging rather than risk skipping results."
        )
    # At least one row: a tenth of a page under ten rows is none, which would re-read the same offset.
    state.step_back = max(page_size // 10, 1, 2 * state.step_back)
    state.offset = max(0, state.offset - state.step_back)
    # From further back, the page may be the previous one again (the list moved up by as much):
    # that is no list answering one page for every offset.
    state.previous_ids = None


def _advance(
    state: _Listing,
    stamped: list[tuple[datetime | None, dict[str, Any]]],
    *,
    type_: str,
    page_size: int,
    pages: int,
    bound: int | None,
) -> None:
    """Move to the next page, overlapping the group of rows that share the last ``updated_at``."""
    ids = [row.get("id") for _, row in stamped]
    last_moment, last_row = stamped[-1]
    ends_where_it_ended = state.anchor_id is not None and ids[-1] == state.anchor_id
    state.stale = state.stale + 1 if ends_where_it_ended else 0
    repeated = ids == state.previous_ids
    if repeated or state.stale >= MAX_STALE_PAGES or pages >= (bound if bound is not None else 10_000):
        why = (
            "it answered the same page for another offset"
            if repeated
            else f"{state.stale} page(s) in a row ended where the previous one did"
            if state.stale >= MAX_STALE_PAGES
            else f"{pages} page(s) of {page_size} are more than its total allows"
        )
        raise JobMojitoUnexpectedAnswerError(
            f"JobMojito GET /{LIST_RESULTS_PATH} (type {type_}) still said has_more, but {why}: "
            "stopped paging."
        )
    ties = 0
    for moment, _ in reversed(stamped):
        if moment != last_moment:
            break
        ties += 1
    overlap = min(ties + 1, len(stamped) // 2)
    state.previous_ids = ids
    state.anchor_id, state.anchor_moment = (last_row.get("id"), last_moment) if overlap else (None, None)
    state.offset += len(stamped) - overlap


def details_plan(
    calls: Calls, interview_result_id: str, *, signed_recordings: bool, stop: Stop | None = None
) -> Plan[dict[str, Any]]:
    """``GET job-interview-details`` of one result; each signed URL in the answer is a secret."""
    params = {
        "interview_result_id": interview_result_id,
        "get_signed_recordings": "true" if signed_recordings else "false",
    }
    answer = yield from calls.call(
        "GET", RESULT_DETAILS_PATH, params=params, subject=f"result {interview_result_id}", stop=stop
    )
    for url in signed_urls(answer):
        yield Secret(url)
    return answer


def signed_urls(details: Mapping[str, Any]) -> list[str]:
    """The URLs in a details answer (its own and its transcript's), which may be signed."""
    found = [value for key, value in details.items() if key.endswith("_url") and isinstance(value, str)]
    transcript = details.get("transcript")
    for item in transcript if isinstance(transcript, list) else []:
        if isinstance(item, dict):
            found += [value for key, value in item.items() if key.endswith("_url") and isinstance(value, str)]
    return found
