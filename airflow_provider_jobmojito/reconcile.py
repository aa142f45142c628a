"""Positions as code: the decisions of a reconcile, as pure functions (no HTTP, no Airflow).

:class:`~airflow_provider_jobmojito.operators.positions_as_code.ReconcilePositionsOperator` reads
the live positions and writes the changes; everything it decides is here, testable without a
network: parsing the desired state (:func:`parse_desired`), planning the difference
(:func:`plan`), the guardrail (:func:`check_max_changes`), checking an approved plan against a
fresh listing (:func:`recheck`), and the table a person reads (:func:`render_table`).

A plan is plain JSON (what the operator returns as its XCom): ``changes`` (each ``position_id``,
``name``, ``from``, ``to``, ``why``, ``updated_at`` and, when the desired state names it,
``is_embedded``), ``unchanged`` (a count), ``skipped`` (each ``position_id`` and ``reason``),
``listed`` (the positions the listing showed) and ``managed`` (those the reconcile owns: the
base of a fractional ``max_changes``).
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from airflow_provider_jobmojito.exceptions import first_of
from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import StateChange, parse_is_embedded, parse_position_id

#: What a plan's JSON looks like; an approved plan of another version is refused.
PLAN_VERSION = 1
#: Statuses a reconcile neither leaves nor enters unless ``allow_statuses`` names them:
#: whether ``deleted`` can be undone is undocumented, and JobMojito sets ``preparing`` itself.
PROTECTED_STATUSES = frozenset({InterviewStatus.DELETED, InterviewStatus.PREPARING})
#: What ``unmanaged="archive"`` sets live positions that ``desired`` does not name.
UNMANAGED_TARGET = InterviewStatus.ARCHIVED
#: The policies for live positions, within the scope, that ``desired`` does not name.
UNMANAGED_POLICIES = ("ignore", "archive")
#: The file types ``desired`` may name; YAML needs PyYAML (which Airflow itself requires).
SPEC_SUFFIXES = (".json", ".yaml", ".yml")
#: The product types ``merchant-interview-list`` filters on (its ``type``).
POSITION_TYPES = ("interview", "coaching", "assessment", "public_avatar", "persona", "persona_interview")
_RECORD_KEYS = frozenset({"position_id", "status", "is_embedded"})

WHY_DESIRED = "desired"
WHY_UNMANAGED = "unmanaged: archive"


@dataclass(frozen=True)
class Desired:
    """What one position should be.

    :param position_id: canonical lower-case UUID.
    :param status: its status.
    :param is_embedded: embedding, ensured when the status changes; ``None`` leaves it.
    """

    position_id: str
    status: InterviewStatus
    is_embedded: bool | None = None


@dataclass(frozen=True)
class Live:
    """One row of ``merchant-interview-list``, as much as a reconcile reads of it."""

    position_id: str
    name: str
    status: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Live:
        return cls(
            position_id=str(row.get("id", "")).lower(),
            name=str(row.get("name") or ""),
            status=str(row.get("status") or ""),
            updated_at=str(row.get("updated_at") or ""),
        )


# -- the desired state -----------------------------------------------------------------------


def is_spec_path(value: object) -> bool:
    """Whether ``desired`` names a file (read at run time) rather than holding the state."""
    return isinstance(value, str | Path) and str(value).strip().lower().endswith(SPEC_SUFFIXES)


def check_spec_path(value: str | Path, *, param: str = "desired") -> None:
    """A file name ``desired`` may give: a ``.json``, ``.yaml`` or ``.yml`` file."""
    if not is_spec_path(value):
        raise ValueError(
            f"{param} must be a mapping {{position_id: status}}, a list of records (position_id, "
            f"status, optionally is_embedded) or the path of a {', '.join(SPEC_SUFFIXES)} file; "
            f"got {str(value)[:100]!r}."
        )


def load_spec_file(path: str | Path, folder: str | Path | None, *, param: str = "desired") -> Any:
    """Read a spec file: ``path``, relative to ``folder`` (the DAG file's) unless absolute.

    :raises ValueError: naming ``param`` and the file, when it is missing or does not parse.
    """
    check_spec_path(path, param=param)
    file = Path(path)
    if not file.is_absolute() and folder is not None:
        file = Path(folder) / file
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{param}: cannot read {str(file)!r}: {exc.strerror or exc}.") from None
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        import yaml  # only for YAML files (a requirement of Airflow's and of this package's)

        return yaml.safe_load(text)
    except ValueError as exc:  # json.JSONDecodeError
        raise ValueError(f"{param}: {str(file)!r} is not valid JSON: {exc}.") from None
    except Exception as exc:  # yaml.YAMLError, whose module is imported above only for YAML
        raise ValueError(f"{param}: {str(file)!r} is not valid YAML: {exc}.") from None


def decode_rendered(value: Any) -> Any:
    """A rendered ``desired`` or ``approved_plan``: Jinja renders an upstream XCom to text (JSON,
    or a Python ``repr`` of a dict or list); anything else is returned as it is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith(("{", "[")):
        return value
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)  # literals only: never code
    except (ValueError, SyntaxError):
        return value


def parse_desired(value: object, *, param: str = "desired") -> dict[str, Desired]:
    """The desired state, checked: every id a UUID, every status known, no id twice.

    :param value: ``{position_id: status}``, a list of records ``{"position_id", "status",
        "is_embedded"?}``, or a document ``{"positions": [...records]}`` (a spec file's form).
    :param param: the parameter named in errors.
    :return: by canonical id.
    :raises ValueError: naming ``param``, the entry and what is allowed; every bad entry counted.
    """
    if isinstance(value, Mapping) and set(value) == {"positions"}:
        value = value["positions"]
        param = f"{param}['positions']"
    entries: list[tuple[str, object, object, object]] = []  # where, id, status, is_embedded
    if isinstance(value, Mapping):
        entries = [(f"{param}[{key!r}]", key, status, None) for key, status in value.items()]
    elif isinstance(value, list | tuple):
        for index, record in enumerate(value):
            where = f"{param}[{index}]"
            if not isinstance(record, Mapping):
                raise ValueError(
                    f"{where} must be a record with position_id and status; got {type(record).__name__}."
                )
            if unknown := sorted(set(record) - _RECORD_KEYS):
                raise ValueError(
                    f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; a record has "
                    "position_id, status and optionally is_embedded."
                )
            if "position_id" not in record or "status" not in record:
                raise ValueError(f"{where} needs position_id and status.")
            entries.append((where, record["position_id"], record["status"], record.get("is_embedded")))
    else:
        raise ValueError(
            f"{param} must be a mapping {{position_id: status}}, a list of records or a spec file "
            f"path; got {type(value).__name__}."
        )
    desired: dict[str, Desired] = {}
    where_of: dict[str, str] = {}
    bad: list[str] = []
    for where, raw_id, raw_status, raw_embedded in entries:
        try:
            position_id = parse_position_id(raw_id, param=where)
            status = InterviewStatus.parse(raw_status, param=f"{where} status")
            is_embedded = parse_is_embedded(raw_embedded, param=f"{where} is_embedded")
        except ValueError as exc:
            bad.append(str(exc))
            continue
        wanted = Desired(position_id, status, is_embedded)
        if position_id in desired:
            earlier = desired[position_id]
            kind = "a duplicate of" if earlier == wanted else "in conflict with"
            bad.append(
                f"{where} ({position_id}) is {kind} {where_of[position_id]} (ids compare as UUIDs: "
                "case and hyphens do not matter); name each position once"
            )
            continue
        desired[position_id] = wanted
        where_of[position_id] = where
    if bad:
        raise ValueError(f"{param}: {len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'}: {first_of(bad)}")
    return desired


def check_protected_targets(
    desired: Mapping[str, Desired], allowed: frozenset[str], *, param: str = "desired"
) -> None:
    """Refuse a desired status that is protected and not opted into (``allow_statuses``)."""
    refused = sorted({d.status.value for d in desired.values() if d.status in PROTECTED_STATUSES} - allowed)
    if refused:
        raise ValueError(
            f"{param} sets {', '.join(refused)}, which a reconcile enters only when allow_statuses "
            f"names it (protected: {', '.join(sorted(PROTECTED_STATUSES))})."
        )


# -- the other arguments ---------------------------------------------------------------------


def parse_allow_statuses(value: object) -> frozenset[str]:
    """``allow_statuses``: protected statuses a reconcile may leave or enter."""
    if value is None:
        return frozenset()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Iterable):
        raise ValueError(f"allow_statuses must be a list of statuses; got {value!r}.")
    parsed = {InterviewStatus.parse(item, param="allow_statuses").value for item in values}
    if extra := sorted(parsed - PROTECTED_STATUSES):
        raise ValueError(
            f"allow_statuses names only protected statuses ({', '.join(sorted(PROTECTED_STATUSES))}); "
            f"{', '.join(extra)} need no opt-in."
        )
    return frozenset(parsed)


def check_max_changes(value: object) -> int | float | None:
    """``max_changes``: a whole number (a count), a fraction strictly between 0 and 1 or 1.0
    (of the managed positions), or ``None`` (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(
            f"max_changes must be a whole number, a fraction from 0 to 1, or None; got {value!r}."
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"max_changes as a count must be 0 or more; got {value!r}.")
        return value
    if isinstance(value, float):
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ValueError(f"max_changes as a fraction must be from 0 to 1; got {value!r}.")
        return value
    raise ValueError(f"max_changes must be a whole number, a fraction from 0 to 1, or None; got {value!r}.")


def change_limit(max_changes: int | float | None, managed: int) -> int | None:
    """The most changes allowed: a count as it is, a fraction of ``managed`` rounded down."""
    if max_changes is None:
        return None
    if isinstance(max_changes, int):
        return max_changes
    # On the decimal as written: 0.29 * 100 is 28.999999999999996 in binary floating point.
    return math.floor(Fraction(repr(float(max_changes))) * managed)


def check_unmanaged(unmanaged: object, *, filter_text: object, managed_ids: object) -> str:
    """``unmanaged``, and a scope when it archives: a ``filter_text`` or ``managed_ids``."""
    if unmanaged not in UNMANAGED_POLICIES:
        raise ValueError(f"unmanaged must be one of {', '.join(UNMANAGED_POLICIES)}; got {unmanaged!r}.")
    if unmanaged == "archive" and not filter_text and managed_ids is None:
        raise ValueError(
            'unmanaged="archive" needs a scope, so that it never archives what it does not own: give '
            "filter_text (positions whose name holds it) or managed_ids (an explicit list)."
        )
    return str(unmanaged)


def check_not_empty_for_archive(desired: Mapping[str, Desired], unmanaged: str) -> None:
    """An empty desired state with ``unmanaged="archive"`` would archive the whole scope: refused
    (an export that came back empty looks like this)."""
    if unmanaged == "archive" and not desired:
        raise ValueError(
            'desired is empty: with unmanaged="archive" that archives every position of the scope. '
            "Name at least one position (an empty export is more likely a failed one)."
        )


def parse_managed_ids(value: object) -> frozenset[str] | None:
    """``managed_ids``: the ids a reconcile owns (``None``: every listed position)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"managed_ids must be a list of UUIDs; got {value!r}.")
    return frozenset(parse_position_id(v, param=f"managed_ids[{i}]") for i, v in enumerate(value))


def check_position_type(value: object) -> str:
    """``position_type``: the list's ``type`` filter."""
    if value not in POSITION_TYPES:
        raise ValueError(f"position_type must be one of {', '.join(POSITION_TYPES)}; got {value!r}.")
    return str(value)


# -- planning --------------------------------------------------------------------------------


def index_live(rows: Iterable[Mapping[str, Any]]) -> dict[str, Live]:
    """The listed rows by id; a row listed twice (offsets shift when a row is updated during
    paging) is kept once, with the newest ``updated_at``."""
    live: dict[str, Live] = {}
    for row in rows:
        item = Live.from_row(row)
        seen = live.get(item.position_id)
        if seen is None or item.updated_at > seen.updated_at:
            live[item.position_id] = item
    return live


def plan(
    desired: Mapping[str, Desired],
    live: Mapping[str, Live],
    *,
    unmanaged: str = "ignore",
    managed_ids: frozenset[str] | None = None,
    allow_statuses: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The change set that takes ``live`` to ``desired``.

    A desired id the listing does not show is skipped (set-state would answer 500 for an unknown
    id). A position in a protected status is neither left nor entered unless ``allow_statuses``
    names that status. With ``unmanaged="archive"``, listed positions within ``managed_ids`` (all
    listed ones when ``None``) that ``desired`` does not name are archived, except those in a
    protected status, which are left as they are (whatever ``allow_statuses`` says) and count as
    unchanged: a deleted one is already out of use, and JobMojito is preparing the other.

    :return: the plan as JSON (see the module's documentation).
    """
    changes: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    unchanged = 0
    managed = 0

    def consider(position: Live, to: InterviewStatus, why: str, is_embedded: bool | None) -> None:
        nonlocal unchanged
        if position.status == to.value:
            unchanged += 1
            return
        if reason := protected_reason(position.status, to.value, allow_statuses):
            skipped.append({"position_id": position.position_id, "name": position.name, "reason": reason})
            return
        change: dict[str, Any] = {
            "position_id": position.position_id,
            "name": position.name,
            "from": position.status,
            "to": to.value,
            "why": why,
            "updated_at": position.updated_at,
        }
        if is_embedded is not None:
            change["is_embedded"] = is_embedded
        changes.append(change)

    for position_id, wanted in desired.items():
        position = live.get(position_id)
        if position is None:
            skipped.append(
                {
                    "position_id": position_id,
                    "name": "",
                    "reason": (
                        "not listed: unknown, of another type, outside filter_text, or changed while "
                        "the listing paged; never written"
                    ),
                }
            )
            continue
        managed += 1
        consider(position, wanted.status, WHY_DESIRED, wanted.is_embedded)
    if unmanaged == "archive":
        for position_id, position in live.items():
            if position_id in desired or (managed_ids is not None and position_id not in managed_ids):
                continue
            managed += 1
            if position.status in PROTECTED_STATUSES:
                # Archiving would undelete a deleted position (allow_statuses lets desired enter
                # deleted, which must not also mean leaving it) or take a position from JobMojito
                # while it prepares it: neither is drift from "not in use".
                unchanged += 1
                continue
            consider(position, UNMANAGED_TARGET, WHY_UNMANAGED, None)
    changes.sort(key=lambda c: (c["why"], c["name"], c["position_id"]))
    return {
        "version": PLAN_VERSION,
        "changes": changes,
        "unchanged": unchanged,
        "skipped": skipped,
        "listed": len(live),
        "managed": managed,
    }


def protected_reason(before: str, after: str, allowed: frozenset[str]) -> str | None:
    """Why a change from ``before`` to ``after`` is not made (a protected status that ``allowed``
    does not name), or ``None``."""
    refused = sorted(({before, after} & PROTECTED_STATUSES) - allowed)
    if not refused:
        return None
    verb = "leave" if before in refused else "enter"
    return f"would {verb} {refused[0]} ({before} -> {after}); allow_statuses must name {refused[0]}"


def guardrail_error(the_plan: Mapping[str, Any], max_changes: int | float | None) -> str | None:
    """Why ``the_plan`` has too many changes for ``max_changes``, or ``None``."""
    limit = change_limit(max_changes, int(the_plan.get("managed", 0)))
    count = len(the_plan["changes"])
    if limit is None or count <= limit:
        return None
    of = (
        f" ({max_changes:.0%} of {the_plan.get('managed', 0)} managed)"
        if isinstance(max_changes, float)
        else ""
    )
    return (
        f"The plan has {count} change(s), more than max_changes allows: {limit}{of}. Nothing was "
        "written. A truncated export would look like this; check desired, or raise max_changes."
    )


def parse_plan(value: object, *, param: str = "approved_plan") -> dict[str, Any]:
    """An approved plan (a plan's JSON, as XCom or rendered text), checked before any request."""
    value = decode_rendered(value)
    if not isinstance(value, Mapping) or value.get("version") != PLAN_VERSION:
        raise ValueError(
            f"{param} must be the plan a ReconcilePositionsOperator returned (a JSON object with "
            f"version {PLAN_VERSION}); got {str(value)[:100]!r}."
        )
    scope = value.get("scope")
    if scope is not None:
        if not isinstance(scope, Mapping) or not set(scope) <= {"type", "filter_text"}:
            raise ValueError(f"{param}['scope'] must be an object with type and optionally filter_text.")
        check_position_type(scope.get("type"))
        if not isinstance(scope.get("filter_text", ""), str):
            raise ValueError(f"{param}['scope']['filter_text'] must be a string.")
    changes = value.get("changes")
    if not isinstance(changes, list):
        raise ValueError(f"{param}['changes'] must be a list.")
    seen: set[str] = set()
    for index, change in enumerate(changes):
        where = f"{param}['changes'][{index}]"
        if not isinstance(change, Mapping):
            raise ValueError(f"{where} must be an object.")
        position_id = parse_position_id(change.get("position_id"), param=f"{where}['position_id']")
        InterviewStatus.parse(change.get("to"), param=f"{where}['to']")
        parse_is_embedded(change.get("is_embedded"), param=f"{where}['is_embedded']")
        if not isinstance(change.get("updated_at"), str):
            raise ValueError(f"{where}['updated_at'] must be the listed updated_at (a string).")
        if position_id in seen:
            raise ValueError(f"{where} changes {position_id} a second time.")
        seen.add(position_id)
    return dict(value)


def recheck(
    approved: Mapping[str, Any], live: Mapping[str, Live], *, allow_statuses: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The approved plan against a fresh listing: a position that already has its target counts
    as unchanged (a retry after a partial failure wrote it); another change is kept only when its
    position is still listed with the ``updated_at`` the plan saw, and neither leaves nor enters
    a protected status that ``allow_statuses`` does not name (the apply's own opt-in: a plan is
    data, and may have been edited); others are reported, never overwritten.

    :return: the approved plan with ``changes`` narrowed, ``skipped`` extended and ``unchanged``
        counting positions that already have their target.
    """
    kept: list[dict[str, Any]] = []
    skipped = list(approved.get("skipped", []))
    unchanged = int(approved.get("unchanged", 0))
    for change in approved["changes"]:
        position_id = parse_position_id(change["position_id"])
        position = live.get(position_id)
        if position is None:
            reason = "no longer listed since the plan; not written"
        elif position.status == change["to"]:
            # Before the updated_at check: a retry after a partial failure finds its own writes.
            unchanged += 1
            continue
        elif position.updated_at != change["updated_at"]:
            reason = (
                f"changed since the plan (updated_at {change['updated_at']} -> {position.updated_at}, "
                f"status now {position.status}); not overwritten: plan again"
            )
        elif protected := protected_reason(position.status, change["to"], allow_statuses):
            reason = protected
        else:
            kept.append(change)
            continue
        skipped.append({"position_id": position_id, "name": change.get("name", ""), "reason": reason})
    return {**approved, "changes": kept, "skipped": skipped, "unchanged": unchanged}


def state_changes(changes: Sequence[Mapping[str, Any]]) -> list[StateChange]:
    """The set-state calls of a plan's changes, one per position."""
    return [StateChange.build(c["position_id"], c["to"], c.get("is_embedded")) for c in changes]


def drift(the_plan: Mapping[str, Any]) -> list[str]:
    """The differences a plan shows, one line each: its changes and its skipped positions."""
    lines = [
        f"{c['position_id']} ({c['name']}): {c['from']} -> {c['to']} ({c['why']})"
        for c in the_plan["changes"]
    ]
    lines += [f"{s['position_id']}: {s['reason']}" for s in the_plan["skipped"]]
    return lines


def render_table(the_plan: Mapping[str, Any]) -> str:
    """The change set as a Markdown table (the task log, an approver's body), with the counts."""
    head = "| position | name | from | to | why |\n|---|---|---|---|---|"
    rows = [
        f"| {c['position_id']} | {_cell(c['name'])} | {c['from']} | {c['to']}"
        f"{_embedding(c.get('is_embedded'))} | {c['why']} |"
        for c in the_plan["changes"]
    ]
    rows += [
        f"| {s['position_id']} | {_cell(s.get('name', ''))} | | | skipped: {_cell(s['reason'])} |"
        for s in the_plan["skipped"]
    ]
    summary = (
        f"{len(the_plan['changes'])} change(s), {the_plan['unchanged']} unchanged, "
        f"{len(the_plan['skipped'])} skipped, of {the_plan['listed']} listed position(s)."
    )
    return "\n".join([summary, "", head, *rows]) if rows else summary


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _embedding(is_embedded: object) -> str:
    if is_embedded is None:
        return ""
    return ", embedding on" if is_embedded else ", embedding off"


__all__ = [
    "PLAN_VERSION",
    "PROTECTED_STATUSES",
    "Desired",
    "Live",
    "change_limit",
    "check_max_changes",
    "check_not_empty_for_archive",
    "check_protected_targets",
    "check_unmanaged",
    "decode_rendered",
    "drift",
    "guardrail_error",
    "index_live",
    "load_spec_file",
    "parse_allow_statuses",
    "parse_desired",
    "parse_plan",
    "plan",
    "protected_reason",
    "recheck",
    "render_table",
    "state_changes",
]
