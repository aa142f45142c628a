"""Checks of the input to ``job-interview-set-state``, run before any request is sent.

Every check of the package's arguments lives here, once: the hook, the bulk path and the
operators call these and only turn a ``ValueError`` into the failure that suits them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_jobmojito.connection import EXTRAS
from airflow_provider_jobmojito.exceptions import JobMojitoArgumentError, first_of
from airflow_provider_jobmojito.status import InterviewStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

#: The forms of a UUID people write, once an ``urn:uuid:`` prefix or braces are taken off:
#: hyphenated, or 32 hex digits. ``uuid.UUID()`` itself is laxer (it strips whitespace and
#: accepts ``+`` and ``0x`` inside), which turned a malformed id into another, valid one.
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
_URN_PREFIX = "urn:uuid:"


def parse_position_id(value: object, *, param: str = "position_id") -> str:
    """Return ``value`` as a canonical lower-case UUID string, or raise ``ValueError`` naming ``param``.

    :param value: a :class:`uuid.UUID`, or a string holding one, in upper or lower case:
        ``3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e``, the same in braces, with an ``urn:uuid:``
        prefix, or without hyphens. Nothing else: no whitespace, no other punctuation.
    :param param: the parameter name to put in the error message.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        text = value.lower()
        if text.startswith(_URN_PREFIX):
            text = text[len(_URN_PREFIX) :]
        elif text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        if _UUID_TEXT.fullmatch(text):
            return str(uuid.UUID(text))
    raise ValueError(f"{param} must be a UUID such as 3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e; got {value!r}.")


def parse_is_embedded(value: object, *, param: str = "is_embedded") -> bool | None:
    """Return ``value`` if it is ``True``, ``False`` or ``None``; otherwise raise ``ValueError``."""
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{param} must be True, False or None; got {value!r}.")


@dataclass(frozen=True)
class StateChange:
    """One validated request to ``job-interview-set-state``.

    :param position_id: canonical lower-case UUID of the interview or position.
    :param status: the new lifecycle status, or ``None`` to leave it.
    :param is_embedded: ``True`` to switch iframe embedding on, ``False`` off, ``None`` to leave it.
    """

    position_id: str
    status: InterviewStatus | None = None
    is_embedded: bool | None = None

    @classmethod
    def build(cls, position_id: object, status: object = None, is_embedded: object = None) -> StateChange:
        """Validate raw arguments; raise ``ValueError`` naming the first bad parameter."""
        require_a_change(status, is_embedded)
        return cls(
            position_id=parse_position_id(position_id),
            status=None if status is None else InterviewStatus.parse(status),
            is_embedded=parse_is_embedded(is_embedded),
        )

    def body(self) -> dict[str, Any]:
        """The JSON body for the API: only the fields that change."""
        body: dict[str, Any] = {"position_id": self.position_id}
        if self.status is not None:
            body["status"] = self.status.value
        if self.is_embedded is not None:
            body["is_embedded"] = self.is_embedded
        return body

    @property
    def summary(self) -> str:
        """What changes, e.g. ``archived, embedding off``."""
        parts = []
        if self.status is not None:
            parts.append(self.status.value)
        if self.is_embedded is not None:
            parts.append("embedding on" if self.is_embedded else "embedding off")
        return ", ".join(parts)

    def describe(self) -> str:
        """A short account for log lines, e.g. ``position 3f2a6c1e -> archived, embedding off``."""
        return f"position {self.position_id} -> {self.summary}"


_PLAIN_VALUES = (str, bool, int, float, uuid.UUID, list, tuple, dict, type(None))


def is_literal(value: object) -> bool:
    """Whether an operator's argument is known at DAG parse time (no Jinja, no upstream output),
    so that it can be checked then."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return isinstance(value, _PLAIN_VALUES)


def require_a_change(status: object, is_embedded: object) -> None:
    """A state change needs ``status`` or ``is_embedded`` (or both): ``ValueError`` otherwise."""
    if status is None and is_embedded is None:
        raise ValueError(
            f"Give status (one of {InterviewStatus.allowed()}) or is_embedded (True or False), "
            "or both; got neither."
        )


def build_changes(position_ids: Iterable[object], status: object, is_embedded: object) -> list[StateChange]:
    """Check a whole batch before anything is sent; one change per id, in input order.

    :raises ValueError: naming the parameter: ``position_ids`` given as one string, an entry that
        is not a UUID (with its index), an id listed twice; or a bad ``status``/``is_embedded``,
        with the single call's message.
    """
    if isinstance(position_ids, str | bytes):
        raise ValueError(
            "position_ids must be a list of UUIDs, not one string; "
            "use set_interview_state for a single position."
        )
    try:
        ids = list(position_ids)
    except TypeError:
        raise ValueError(
            f"position_ids must be a list of UUIDs; got {type(position_ids).__name__}."
        ) from None
    require_a_change(status, is_embedded)
    parsed_status = None if status is None else InterviewStatus.parse(status)
    parsed_embedding = parse_is_embedded(is_embedded)

    canonical: list[str] = []
    bad: list[str] = []
    for index, value in enumerate(ids):
        try:
            canonical.append(parse_position_id(value, param=f"position_ids[{index}]"))
        except ValueError:
            bad.append(f"[{index}] {value!r}")
    if bad:
        raise ValueError(
            f"position_ids must be UUIDs such as 3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e; "
            f"{len(bad)} of {len(ids)} are not: {first_of(bad)}."
        )

    first_seen: dict[str, int] = {}
    repeats: dict[str, list[int]] = {}
    for index, position_id in enumerate(canonical):
        first = first_seen.setdefault(position_id, index)
        if first != index:
            repeats.setdefault(position_id, [first]).append(index)
    if repeats:
        listed = first_of([f"{pid} at {', '.join(map(str, where))}" for pid, where in repeats.items()])
        raise ValueError(
            f"position_ids lists {len(repeats)} id(s) more than once (ids are compared as UUIDs, "
            f"so case and hyphens do not matter): {listed}. Give each position once."
        )
    return [StateChange(position_id, parsed_status, parsed_embedding) for position_id in canonical]


def check_max_workers(max_workers: object) -> int:
    """``max_workers`` as a whole number of at least 1, or ``ValueError`` naming it."""
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a whole number of at least 1; got {max_workers!r}.")
    return max_workers


def check_failures_in_a_row(failures_in_a_row: object, max_workers: int) -> int | None:
    """The bulk breaker's threshold: ``None`` means twice ``max_workers``, at least 10; 0 means
    never (returned as ``None``); anything but a whole number of 0 or more is a ``ValueError``."""
    if failures_in_a_row is None:
        return max(10, 2 * max_workers)
    if isinstance(failures_in_a_row, bool) or not isinstance(failures_in_a_row, int) or failures_in_a_row < 0:
        raise ValueError(f"failures_in_a_row must be a whole number, 0 or more; got {failures_in_a_row!r}.")
    return failures_in_a_row or None


def check_hook_params(value: object) -> None:
    """``hook_params`` as an operator or sensor takes it: a dict of the hook's keyword arguments,
    each named after a connection extra and parsed as the connection would parse it; ``None``
    values mean "not given". Raises ``ValueError`` naming the first bad one.

    Checked when the DAG is parsed: the hook is built only when the task runs, where a typo would
    be a raw ``TypeError``, retried like any other error.
    """
    if not isinstance(value, dict):
        raise ValueError(f"hook_params must be a dict of hook arguments; got {type(value).__name__}.")
    for name, setting in value.items():
        if name not in EXTRAS:
            raise ValueError(f"hook_params has an unknown argument {name!r}; known: {', '.join(EXTRAS)}.")
        if setting is not None:
            EXTRAS[name].parse(f"hook_params[{name!r}]", setting)


def check_literal_arguments(
    arguments: Mapping[str, Any], checks: Mapping[str, Callable[[Any], object]], *, owner: str = ""
) -> None:
    """Run each check on its argument when the argument is given (not ``None``) and literal (see
    :func:`is_literal`): what a task's constructor and its ``partial()`` both check at parse time.

    :param arguments: the task's arguments by name (``vars(self)`` or ``partial()``'s kwargs).
    :param checks: by argument name, a function that raises ``ValueError`` on a bad value.
    :param owner: put before the message, e.g. ``"InterviewStateSensor 'wait': "``.
    :raises JobMojitoArgumentError: (a ``ValueError``, and an ``AirflowFailException`` at run time)
        naming the first bad argument.
    """
    for name, check in checks.items():
        value = arguments.get(name)
        if value is not None and is_literal(value):
            try:
                check(value)
            except ValueError as exc:
                raise JobMojitoArgumentError(f"{owner}{exc}") from None
