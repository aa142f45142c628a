"""Checks of the input to ``job-interview-set-state``, run before any request is sent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from airflow_provider_jobmojito.status import InterviewStatus


def parse_position_id(value: object, *, param: str = "position_id") -> str:
    """Return ``value`` as a canonical lower-case UUID string, or raise ``ValueError`` naming ``param``.

    :param value: a UUID, or a string in any form :class:`uuid.UUID` reads.
    :param param: the parameter name to put in the error message.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
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
        change = cls(
            position_id=parse_position_id(position_id),
            status=None if status is None else InterviewStatus.parse(status),
            is_embedded=parse_is_embedded(is_embedded),
        )
        if change.status is None and change.is_embedded is None:
            raise ValueError(
                "Give status (one of "
                f"{InterviewStatus.allowed()}) or is_embedded (True or False), or both; got neither."
            )
        return change

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
