"""The lifecycle statuses of a JobMojito interview or position."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class InterviewStatus(StrEnum):
    """A lifecycle status, as ``job-interview-set-state`` accepts it.

    Members compare equal to their strings, so ``InterviewStatus.ACTIVE == "active"``.
    """

    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"
    PREPARING = "preparing"
    COMPLETED = "completed"

    @classmethod
    def allowed(cls) -> str:
        """The allowed values, for error messages: ``draft, active, ...``."""
        return ", ".join(member.value for member in cls)

    @classmethod
    def parse(cls, value: object, *, param: str = "status") -> InterviewStatus:
        """Return the member for ``value`` or raise ``ValueError`` naming ``param``.

        :param value: a member or its exact lower-case string.
        :param param: the parameter name to put in the error message.
        """
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise ValueError(f"{param} must be one of {cls.allowed()}; got {value!r}.")

    @classmethod
    def parse_many(cls, value: object, *, param: str) -> list[str]:
        """One status or a list of them, as a list of status values; ``ValueError`` naming ``param``."""
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, Iterable):
            raise ValueError(f"{param} must be a status or a list of statuses; got {value!r}.")
        parsed = [cls.parse(item, param=param).value for item in values]
        if not parsed:
            raise ValueError(f"{param} must name at least one status ({cls.allowed()}).")
        return parsed
