"""The sandbox's interview results: a compact store, the list and detail routes, the admin route.

A result is held as one small record (numbers and shared strings); the row the API answers, its
ids, candidate, statuses and scores are derived from the record when a page is built, so 100,000
results take a few tens of megabytes. An index sorted newest ``updated_at`` first (ties by id)
is kept per product type, so a page of the default listing is a slice, not a sort.

Results change over time through the control API (``POST /_sandbox/results``: create some,
update some) or through a ``results`` fault, which makes the same change just before the request
it meets is answered (rows updated between two pages of an export).
"""

from __future__ import annotations

import bisect
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .messages import json_response
from .state import (
    POSITION_TYPES,
    SANDBOX_MERCHANT_ID,
    ValidationError,
    canonical_uuid,
    format_timestamp,
)

if TYPE_CHECKING:
    from .context import Route, SandboxContext
    from .messages import Request, Response
    from .state import Clock

LIST_RESULTS_PATH = "/functions/v1/merchant-result-list"
RESULT_DETAILS_PATH = "/functions/v1/job-interview-details"

#: ``order_by`` values of ``merchant-result-list``, as the contract lists them.
RESULT_ORDERS = ("score", "created_at_newest", "created_at_oldest", "updated_at_newest")
#: ``tab`` values of ``merchant-result-list`` (the empty string means every tab).
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
#: ``step`` values of ``merchant-result-list``.
RESULT_STEPS = ("pre-screening", "interview")
#: The most results one admin call creates, so a typo cannot exhaust the machine.
MAX_CREATE = 1_000_000

# A result's life, one stage per update: (coach_status, processing_status, decision_status).
_STAGES = (
    ("started", "pending", None),
    ("completed", "processing", None),
    ("completed", "done", None),
    ("completed", "done", "selected"),
    ("completed", "done", "rejected"),
)
_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman")
# Ids are UUIDs made of a prefix and the result's number, so no id string is stored and the
# detail route finds a result from its interview_result_id without a second index.
_ROW_PREFIX = 0x5E5A17_00 << 96
_RESULT_PREFIX = 0x5E5A17_01 << 96
_NUMBER_MASK = (1 << 96) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
#: ASCII digits only, few enough that ``int`` never meets its digit limit.
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")


def row_id(number: int) -> str:
    """The ``id`` of result ``number``."""
    return str(uuid.UUID(int=_ROW_PREFIX | number))


def interview_result_id(number: int) -> str:
    """The ``interview_result_id`` of result ``number``."""
    return str(uuid.UUID(int=_RESULT_PREFIX | number))


def number_of(result_id: str, *, prefix: int = _RESULT_PREFIX) -> int | None:
    """The number of the result ``result_id`` names, or ``None`` if the sandbox made no such id."""
    try:
        value = uuid.UUID(result_id).int
    except ValueError:
        return None
    return value & _NUMBER_MASK if value & ~_NUMBER_MASK == prefix else None


class _Record:
    """One result, compactly (``__slots__``, no per-row strings but the shared ones)."""

    __slots__ = ("created_ms", "definition_id", "is_test", "number", "type", "updated_ms", "version")

    def __init__(self, number: int, definition_id: str, type_: str, is_test: bool, created_ms: int) -> None:
        self.number = number
        self.definition_id = definition_id
        self.type = type_
        self.is_test = is_test
        self.created_ms = created_ms
        self.updated_ms = created_ms
        self.version = 0

    def key(self) -> tuple[int, int]:
        """Its place in the index: newest ``updated_at`` first, then by id (= by number)."""
        return (-self.updated_ms, self.number)

    def stage(self) -> tuple[str, str, str | None]:
        return _STAGES[min(self.version, len(_STAGES) - 1)]

    def score(self) -> float | None:
        # Scored once processing is done; moves a little with each later update.
        if self.version < 2:
            return None
        return float((self.number * 37 + self.version * 11) % 101)

    def tab(self) -> str:
        coach_status, _, decision = self.stage()
        if decision == "selected":
            return "decided-selected"
        if decision == "rejected":
            return "decided-rejected"
        return "undecided" if coach_status == "completed" else "incomplete"

    def row(self) -> dict[str, Any]:
        """The row ``merchant-result-list`` answers (``MerchantResultListResponse.data[]``)."""
        n = self.number
        first, last = _FIRST_NAMES[n % len(_FIRST_NAMES)], _LAST_NAMES[n % len(_LAST_NAMES)]
        coach_status, processing_status, decision = self.stage()
        score = self.score()
        return {
            "id": row_id(n),
            "interview_result_id": interview_result_id(n),
            "interview_result_pre_screening_id": None,
            "merchant_id": SANDBOX_MERCHANT_ID,
            "profile_id": str(uuid.UUID(int=(0x5E5A17_02 << 96) | n)),
            "profile_interview_id": str(uuid.UUID(int=(0x5E5A17_03 << 96) | n)),
            "definition_id": self.definition_id,
            "candidate_name": f"{first} {last} {n}",
            "candidate_email": f"{first.lower()}.{last.lower()}.{n}@candidates.example",
            "position_name": f"Sandbox interview {self.definition_id[:8]}",
            "position_step": "interview",
            "type": self.type,
            "emoji": None,
            "external_id": f"ext-{n}",
            "mojito_language_code": "en",
            "status": "active",
            "coach_status": coach_status,
            "decision_status": decision,
            "interview_started": True,
            "is_multi_stage": False,
            "is_test": self.is_test,
            "recruiter_shortlist": False,
            "recruiter_risks": None,
            "duration_ds": 6000 + n % 3000 if coach_status == "completed" else None,
            "score": score,
            "score_simulation": None,
            "score_sentiment": None if score is None else float((n * 13) % 101),
            "score_words_per_minute": None if score is None else float(110 + n % 60),
            "score_interview_ai": score,
            "score_answer_ai": score,
            "score_pronunciation": None,
            "processing_status": processing_status,
            "processing_error": None,
            "kyc_processing_status": None,
            "position_result_step_id": None,
            "created_at": format_timestamp(self.created_ms),
            "updated_at": format_timestamp(self.updated_ms),
        }

    def details(self, *, signed_recordings: bool) -> dict[str, Any]:
        """The answer of ``job-interview-details`` (``JobInterviewDetailsResponse``)."""
        row = self.row()
        coach_status, _, _ = self.stage()
        details: dict[str, Any] = {
            "score": row["score"],
            "score_simulation": None,
            "score_text": None if row["score"] is None else f"{row['score']:g} / 100",
            "score_sentiment": row["score_sentiment"],
            "score_words_per_minute": row["score_words_per_minute"],
            "score_pronunciation": None,
            "score_answer": row["score_answer_ai"],
            "status": coach_status,
            "start": row["created_at"],
            "end": row["updated_at"] if coach_status == "completed" else None,
            "duration": row["duration_ds"],
            "ai_interview_coverage_percentage": None if row["score"] is None else 100.0,
            "ai_completion_reason": "completed" if coach_status == "completed" else None,
            "ai_analysis": None,
            "ai_analysis_recruiter": None,
            "ai_analysis_other": None,
            "ai_analysis_recruiter_why_hire": None,
            "ai_analysis_recruiter_why_not_hire": None,
            "recruiter_risks": None,
            "user_feedback_recruiter": None,
            "recording_local_path": None,
            "recording_is_video": True,
            "video_introduction_local_path": None,
            "recording_url": None,
            "video_introduction_url": None,
            "transcript": [
                {
                    "id": str(uuid.UUID(int=(0x5E5A17_04 << 96) | (self.number << 4) | turn)),
                    "is_answer": turn % 2 == 1,
                    "question_asked": "Tell us about a project you are proud of." if turn % 2 == 0 else None,
                    "answer": None if turn % 2 == 0 else f"An answer of candidate {self.number}.",
                    "score": None if turn % 2 == 0 else row["score"],
                }
                for turn in range(4)
            ],
        }
        if signed_recordings:
            # Short-lived signed URLs, as JobMojito's storage signs them: each is a secret.
            for name in ("recording_url", "video_introduction_url"):
                details[name] = (
                    f"https://storage.sandbox.invalid/object/sign/recordings/{row['interview_result_id']}"
                    f"-{name}.mp4?token={secrets.token_urlsafe(24)}"
                )
        return details


@dataclass(frozen=True)
class ResultChange:
    """One admin change of results: ``create`` new ones, ``update`` existing ones.

    :param create: how many results to create.
    :param update: how many to update (the least recently updated first, or ``ids``).
    :param ids: the ``id`` or ``interview_result_id`` of the results to update, instead of the
        least recently updated.
    :param definition_id: the interview the created results belong to.
    :param type: the product type of the created results.
    :param is_test: whether the created results are test results.
    :param at: the ``created_at``/``updated_at`` of the first result created, or the
        ``updated_at`` of the first updated (ISO 8601), instead of the sandbox's clock: to seed
        history.
    :param spread_seconds: with ``at``, the results are stamped evenly over this many seconds
        from ``at``.
    """

    create: int = 0
    update: int = 0
    ids: tuple[str, ...] = ()
    definition_id: str = "0c0ffee0-0000-4000-8000-000000000001"
    type: str = "interview"
    is_test: bool = False
    at: int | None = None
    spread_seconds: float = 0.0

    @classmethod
    def parse(cls, spec: object) -> ResultChange:
        """Validate a change from the control API or a fault.

        :raises ValidationError: naming the offending field.
        """
        if not isinstance(spec, Mapping):
            raise ValidationError("body", "Body must be a JSON object.")
        allowed = {"create", "update", "ids", "definition_id", "type", "is_test", "at", "spread_seconds"}
        for key in spec:
            if key not in allowed:
                raise ValidationError(str(key), "Unknown field.")
        counts = {}
        for name in ("create", "update"):
            value = spec.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CREATE:
                raise ValidationError(name, f"Must be an integer from 0 to {MAX_CREATE}.")
            counts[name] = value
        ids = spec.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise ValidationError("ids", "Must be a list of result ids.")
        type_ = spec.get("type", "interview")
        if type_ not in POSITION_TYPES:
            raise ValidationError("type", f"Must be one of: {', '.join(POSITION_TYPES)}.")
        is_test = spec.get("is_test", False)
        if not isinstance(is_test, bool):
            raise ValidationError("is_test", "Must be a boolean.")
        at = spec.get("at")
        at_ms = None
        if at is not None:
            at_ms = _epoch_ms_of(at)
        spread = spec.get("spread_seconds", 0)
        if isinstance(spread, bool) or not isinstance(spread, int | float) or spread < 0:
            raise ValidationError("spread_seconds", "Must be a number of at least 0.")
        return cls(
            create=counts["create"],
            update=counts["update"],
            ids=tuple(ids),
            definition_id=canonical_uuid(spec.get("definition_id", cls.definition_id), "definition_id"),
            type=type_,
            is_test=is_test,
            at=at_ms,
            spread_seconds=float(spread),
        )


def _epoch_ms_of(value: object) -> int:
    """Milliseconds since the epoch of an ISO 8601 date-time (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError("at", "Must be an ISO 8601 date-time string.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLISECOND


class ResultStore:
    """Results behind one lock, indexed newest ``updated_at`` first per product type.

    Stamps come from ``clock`` at millisecond resolution, each later than the one before (as the
    position store's), so an update always moves a result to the front of the list.

    :param clock: seconds since the epoch; :func:`time.time` by default.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._lock = threading.Lock()
        self._clock: Clock = clock if clock is not None else time.time
        self._records: list[_Record] = []
        # Per type: the records' keys, sorted (newest updated first, then by number).
        self._index: dict[str, list[tuple[int, int]]] = {}
        self._last_stamp_ms = 0

    def _stamp(self) -> int:
        stamp = max(int(self._clock() * 1000), self._last_stamp_ms + 1)
        self._last_stamp_ms = stamp
        return stamp

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def apply(self, change: ResultChange) -> dict[str, Any]:
        """Create and update results as ``change`` says; answers ``{"created", "updated"}`` (ids).

        :raises ValidationError: for an id in ``change.ids`` the sandbox does not know.
        """
        with self._lock:
            wanted = [self._record_of(result_id) for result_id in change.ids]
            created = [self._create(change, index) for index in range(change.create)]
            if created:
                # One sort of nearly sorted keys, not an insertion each (100,000 at once is fine).
                keys = self._index.setdefault(change.type, [])
                keys.extend(record.key() for record in created)
                keys.sort()
            if not wanted and change.update:
                wanted = self._least_recently_updated(
                    change.update, exclude=len(self._records) - len(created)
                )
            for index, record in enumerate(wanted):
                self._touch(record, self._stamp_of(change, index, len(wanted)))
        return {"created": [row_id(r.number) for r in created], "updated": [row_id(r.number) for r in wanted]}

    def _record_of(self, result_id: str) -> _Record:
        number = number_of(result_id, prefix=_ROW_PREFIX)
        if number is None:
            number = number_of(result_id)
        if number is None or number >= len(self._records):
            raise ValidationError("ids", f"No result has the id {result_id!r}.")
        return self._records[number]

    def _create(self, change: ResultChange, index: int) -> _Record:
        stamp = self._stamp_of(change, index, change.create)
        record = _Record(len(self._records), change.definition_id, change.type, change.is_test, stamp)
        self._records.append(record)
        return record

    def _least_recently_updated(self, count: int, *, exclude: int) -> list[_Record]:
        # The tails of the indexes, oldest first; results created by this same change are left out.
        tails = sorted(
            (key for keys in self._index.values() for key in keys[-count:] if key[1] < exclude),
            key=lambda key: (key[0], -key[1]),
            reverse=True,
        )
        return [self._records[number] for _, number in tails[:count]]

    def _stamp_of(self, change: ResultChange, index: int, count: int) -> int:
        """The stamp of the ``index``-th of ``count`` results a change creates or updates: from
        ``at``, spread evenly, or the clock's next."""
        if change.at is None:
            return self._stamp()
        return change.at + int(index * change.spread_seconds * 1000 / count)

    def _touch(self, record: _Record, stamp: int) -> None:
        keys = self._index[record.type]
        del keys[bisect.bisect_left(keys, record.key())]
        record.updated_ms = stamp
        record.version += 1
        bisect.insort(keys, record.key())

    def page(
        self, *, type_: str, order_by: str, offset: int, limit: int, matches: Any = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of rows and the total matching.

        :param matches: a predicate over records for the filters other than ``type``, or ``None``.
        """
        with self._lock:
            keys = self._index.get(type_, [])
            if order_by == "updated_at_newest" and matches is None:
                # The index is this order: a page is a slice.
                return [self._records[n].row() for _, n in keys[offset : offset + limit]], len(keys)
            records = [self._records[n] for _, n in keys]
            if matches is not None:
                records = [r for r in records if matches(r)]
            if order_by == "created_at_newest":
                records.sort(key=lambda r: (-r.created_ms, r.number))
            elif order_by == "created_at_oldest":
                records.sort(key=lambda r: (r.created_ms, r.number))
            elif order_by == "score":
                records.sort(key=lambda r: (-(r.score() or -1.0), r.number))
            return [r.row() for r in records[offset : offset + limit]], len(records)

    def details(self, interview_result_id_: str, *, signed_recordings: bool) -> dict[str, Any] | None:
        """``job-interview-details`` of one result, or ``None`` when there is none."""
        number = number_of(interview_result_id_)
        with self._lock:
            if number is None or number >= len(self._records):
                return None
            return self._records[number].details(signed_recordings=signed_recordings)

    def clear(self) -> None:
        """Forget every result."""
        with self._lock:
            self._records.clear()
            self._index.clear()


def _unprocessable(error: ValidationError) -> Response:
    return json_response(422, error.body())


def _query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise ValidationError(name, f"Must be one of: {', '.join(c or repr(c) for c in choices)}.")
    return value


def _query_int(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = int(raw) if _INT_RE.fullmatch(raw) else None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
        raise ValidationError(name, f"Must be an integer {bounds}.")
    return value


def _matcher(request: Request) -> Any:
    """A predicate over records for the list's filters other than ``type``, or ``None``."""
    tab = _query_choice(request, "tab", RESULT_TABS) or None
    _query_choice(request, "step", RESULT_STEPS)  # every sandbox result is at the interview step
    step = request.query.get("step")
    interview_id = request.query.get("interview_id")
    if interview_id is not None:
        interview_id = canonical_uuid(interview_id, "interview_id")
    profile_interview_id = request.query.get("profile_interview_id")
    profile_number = None
    if profile_interview_id is not None:
        profile_number = number_of(
            canonical_uuid(profile_interview_id, "profile_interview_id"), prefix=0x5E5A17_03 << 96
        )
        if profile_number is None:
            profile_number = -1
    needle = (request.query.get("filter_text") or "").casefold() or None
    if tab is None and step is None and interview_id is None and profile_number is None and needle is None:
        return None

    def matches(record: _Record) -> bool:
        if step == "pre-screening" or (tab is not None and record.tab() != tab):
            return False
        if interview_id is not None and record.definition_id != interview_id:
            return False
        if profile_number is not None and record.number != profile_number:
            return False
        if needle is not None:
            row = record.row()
            return needle in row["candidate_name"].casefold() or needle in row["candidate_email"].casefold()
        return True

    return matches


def list_results(app: SandboxContext, request: Request) -> Response:
    """``GET /functions/v1/merchant-result-list``: a page of results and its pagination.

    ``risks`` and ``filter_emoji`` are accepted and change nothing: sandbox results carry no risk
    flags and no emoji.
    """
    try:
        type_ = _query_choice(request, "type", POSITION_TYPES) or "interview"
        order_by = _query_choice(request, "order_by", RESULT_ORDERS) or "created_at_newest"
        limit = _query_int(request, "limit", 50, 1, 1000)
        offset = _query_int(request, "offset", 0, 0, None)
        merchant_id = request.query.get("merchant_id")
        if merchant_id is not None:
            merchant_id = canonical_uuid(merchant_id, "merchant_id")
        matches = _matcher(request)
    except ValidationError as error:
        return _unprocessable(error)
    if merchant_id is not None and merchant_id != SANDBOX_MERCHANT_ID:
        return json_response(403, {"error": "Caller is not permitted to read this merchant."})
    rows, total = app.results.page(
        type_=type_, order_by=order_by, offset=offset, limit=limit, matches=matches
    )
    pagination = {"total": total, "limit": limit, "offset": offset, "has_more": offset + len(rows) < total}
    return json_response(200, {"data": rows, "pagination": pagination})


def result_details(app: SandboxContext, request: Request) -> Response:
    """``GET /functions/v1/job-interview-details``: one result with its transcript."""
    try:
        result_id = canonical_uuid(request.query.get("interview_result_id"), "interview_result_id")
        signed = _query_choice(request, "get_signed_recordings", ("true", "false")) == "true"
    except ValidationError as error:
        return _unprocessable(error)
    details = app.results.details(result_id, signed_recordings=signed)
    if details is None:
        return json_response(404, {"error": "Interview result not found."})
    return json_response(200, details)


def change_results(app: SandboxContext, request: Request) -> Response:
    """``POST /_sandbox/results``: create and update results (see :class:`ResultChange`).

    Answers ``{"created": [ids], "updated": [ids], "total": n}``.
    """
    try:
        try:
            body = request.json()
        except ValueError:
            raise ValidationError("body", "Body must be JSON.") from None
        outcome = app.results.apply(ResultChange.parse(body))
    except ValidationError as error:
        return _unprocessable(error)
    return json_response(200, {**outcome, "total": len(app.results)})


def clear_results(app: SandboxContext, _request: Request) -> Response:
    """``DELETE /_sandbox/results``: forget every result."""
    app.results.clear()
    return json_response(200, {"ok": True})


API_ROUTES: dict[str, dict[str, Route]] = {
    LIST_RESULTS_PATH: {"GET": list_results},
    RESULT_DETAILS_PATH: {"GET": result_details},
}
CONTROL_ROUTES: dict[str, dict[str, Route]] = {
    "/_sandbox/results": {"POST": change_results, "DELETE": clear_results},
}
