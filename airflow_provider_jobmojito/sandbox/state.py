"""The sandbox's positions: the model, validation of seeds, and the thread-safe store."""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: Lifecycle statuses, in the order of the contract's enum.
POSITION_STATUSES = ("draft", "active", "archived", "deleted", "preparing", "completed")
#: Product types accepted by ``merchant-interview-list``'s ``type`` filter.
POSITION_TYPES = ("interview", "coaching", "assessment", "public_avatar", "persona", "persona_interview")
VISIBILITIES = ("public", "merchant_public", "merchant_invite", "merchant_unlisted", "sub_item")
#: The one merchant every sandbox token belongs to and every position is owned by.
SANDBOX_MERCHANT_ID = "6f1c2e84-3b5a-4d7e-9c10-5a4b3c2d1e0f"

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_SEED_KEYS = frozenset(
    {
        "id",
        "name",
        "status",
        "type",
        "visibility",
        "merchant_id",
        "embedded",
        "embed_id",
        "embed_signing_key",
        "created_at",
        "updated_at",
    }
)


class ValidationError(ValueError):
    """A field failed validation; answered as 422 ``{"error": message, "name": name}``.

    :param name: the offending field, or ``None`` when the whole body is wrong.
    :param message: what is wrong, for humans.
    """

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(f"{name}: {message}" if name else message)
        self.name = name
        self.message = message

    def body(self) -> dict[str, str]:
        """The ``Error``-schema body for this problem."""
        return {"error": self.message} if self.name is None else {"error": self.message, "name": self.name}


def canonical_uuid(value: object, name: str) -> str:
    """Lower-case canonical form of a hyphenated UUID string.

    :param value: the candidate; anything but a string is refused.
    :param name: the field name to report.
    :raises ValidationError: when ``value`` is missing, not a string or not a UUID.
    """
    if value is None:
        raise ValidationError(name, "Field is required.")
    if not isinstance(value, str):
        raise ValidationError(name, "Must be a string.")
    if not _UUID_RE.match(value):
        raise ValidationError(name, "Must be a valid UUID.")
    return value.lower()


def check_status(value: object, name: str = "status") -> str:
    """Return ``value`` if it is one of :data:`POSITION_STATUSES`, else raise :class:`ValidationError`."""
    if not isinstance(value, str) or value not in POSITION_STATUSES:
        raise ValidationError(name, f"Must be one of: {', '.join(POSITION_STATUSES)}.")
    return value


def _choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(name, f"Must be one of: {', '.join(choices)}.")
    return value


#: What the sandbox reads the time from: seconds since the epoch, like :func:`time.time`.
Clock = Callable[[], float]


class ManualClock:
    """A :data:`Clock` that moves only when told to, for tests: pass it as ``SandboxServer(clock=...)``.

    :param start: its first reading, seconds since the epoch (default 2026-01-01T00:00:00Z).
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._lock = threading.Lock()
        self._now = start

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward ``seconds`` (or back, if negative); returns the new reading."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now``."""
        with self._lock:
            self._now = now


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def format_timestamp(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as the contract's examples
    (``2026-01-20T14:05:00.000Z``); fixed width, so timestamps sort as strings.
    """
    moment = _EPOCH + epoch_ms * _MILLISECOND
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def _timestamp(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, "Must be an ISO 8601 date-time string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(name, "Must be an ISO 8601 date-time string.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Re-formatted so that every stored timestamp has one width and sorts as a string.
    return format_timestamp(_epoch_ms(parsed))


def new_embed_key() -> tuple[str, str]:
    """A fresh ``(embed_id, embed_signing_key)`` pair."""
    return str(uuid.uuid4()), secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Position:
    """One interview definition / position as the sandbox stores it.

    :param id: lower-case canonical UUID.
    :param name: display name.
    :param status: one of :data:`POSITION_STATUSES`.
    :param created_at: ISO 8601 UTC (``2026-01-20T14:05:00.000Z``); empty in a seed that gave
        none, until the store stamps it.
    :param updated_at: ISO 8601 UTC; moves forward on every change; empty like ``created_at``.
    :param embed_id: the iframe embed id, or ``None`` when embedding is off.
    :param embed_signing_key: the key signing authenticated embed links, or ``None``.
    :param type: product type (``"interview"`` unless seeded otherwise).
    :param visibility: who can see it.
    :param merchant_id: the owner; always the sandbox merchant unless seeded otherwise.
    """

    id: str
    name: str
    status: str
    created_at: str
    updated_at: str
    embed_id: str | None = None
    embed_signing_key: str | None = None
    type: str = "interview"
    visibility: str = "merchant_public"
    merchant_id: str = SANDBOX_MERCHANT_ID

    @classmethod
    def from_seed(cls, data: object) -> Position:
        """Build a position from a seed object (control API, ``--seed`` file, state file).

        Keys: ``id`` (required), ``name``, ``status`` (default ``draft``), ``type``, ``visibility``,
        ``merchant_id``, ``embedded`` (``true`` creates a fresh embed key), or an explicit
        ``embed_id`` and ``embed_signing_key`` pair, ``created_at``, ``updated_at``.

        :param data: the decoded JSON object.
        :raises ValidationError: for a non-object, an unknown key or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("positions", "Each position must be a JSON object.")
        for key in data:
            if key not in _SEED_KEYS:
                raise ValidationError(str(key), "Unknown field.")
        position_id = canonical_uuid(data.get("id"), "id")
        name = data.get("name", f"Sandbox interview {position_id[:8]}")
        if not isinstance(name, str):
            raise ValidationError("name", "Must be a string.")
        # Left empty when not given: the store stamps them from its clock when it stores the seed.
        created = _timestamp(data["created_at"], "created_at") if "created_at" in data else ""
        embed_id, signing_key = cls._seed_embed_key(data)
        return cls(
            id=position_id,
            name=name,
            status=check_status(data.get("status", "draft")),
            created_at=created,
            updated_at=_timestamp(data["updated_at"], "updated_at") if "updated_at" in data else "",
            embed_id=embed_id,
            embed_signing_key=signing_key,
            type=_choice(data.get("type", "interview"), "type", POSITION_TYPES),
            visibility=_choice(data.get("visibility", "merchant_public"), "visibility", VISIBILITIES),
            merchant_id=canonical_uuid(data.get("merchant_id", SANDBOX_MERCHANT_ID), "merchant_id"),
        )

    @staticmethod
    def _seed_embed_key(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
        embed_id, signing_key = data.get("embed_id"), data.get("embed_signing_key")
        if embed_id is not None or signing_key is not None:
            if not isinstance(embed_id, str) or not isinstance(signing_key, str):
                raise ValidationError("embed_id", "embed_id and embed_signing_key go together, as strings.")
            return embed_id, signing_key
        embedded = data.get("embedded", False)
        if not isinstance(embedded, bool):
            raise ValidationError("embedded", "Must be a boolean.")
        return new_embed_key() if embedded else (None, None)

    def to_dict(self) -> dict[str, Any]:
        """Every field, embed credentials included (for the control API and the state file)."""
        return asdict(self)


class UnknownPositionError(KeyError):
    """No position has this id."""


class PositionStore:
    """Positions keyed by id, behind one lock, optionally mirrored to a JSON file.

    Every method returns plain dicts (copies), so callers never share mutable state with it.

    Every timestamp it writes comes from ``clock``, at millisecond resolution, and is later than
    any it wrote before and than the position's previous ``updated_at``: two changes in the same
    millisecond still get distinct, ordered stamps (the second one a millisecond ahead), so
    "newest-updated first" and "did ``updated_at`` move?" never depend on timing.

    :param state_file: when set, loaded now if it exists and rewritten atomically after every change.
    :param clock: seconds since the epoch; :func:`time.time` by default. Tests pass their own.
    """

    def __init__(self, state_file: str | os.PathLike[str] | None = None, clock: Clock | None = None) -> None:
        self._lock = threading.Lock()
        self._positions: dict[str, Position] = {}
        self._clock: Clock = clock if clock is not None else time.time
        self._last_stamp_ms = 0
        self._state_file = Path(state_file) if state_file is not None else None
        if self._state_file is not None and self._state_file.exists():
            self._load(self._state_file)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        for position in parse_seed(data):
            self._positions[position.id] = self._stamped(position)

    def _stamp(self, after: str = "") -> str:
        """The next timestamp (the caller holds the lock).

        :param after: a timestamp the new one must be later than (a position's ``updated_at``).
        """
        stamp_ms = max(int(self._clock() * 1000), self._last_stamp_ms + 1)
        if after:
            stamp_ms = max(stamp_ms, _epoch_ms(datetime.fromisoformat(after)) + 1)
        self._last_stamp_ms = stamp_ms
        return format_timestamp(stamp_ms)

    def _stamped(self, position: Position) -> Position:
        """``position`` with the timestamps its seed left out filled in (the caller holds the lock)."""
        if position.created_at and position.updated_at:
            return position
        created = position.created_at or position.updated_at or self._stamp()
        return replace(position, created_at=created, updated_at=position.updated_at or created)

    def _persist(self) -> None:
        """Write the state file; the caller holds the lock, so writes land in change order."""
        if self._state_file is None:
            return
        payload = json.dumps({"positions": [p.to_dict() for p in self._positions.values()]}, indent=2)
        directory = self._state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a reader (or a crash) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self._state_file.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, self._state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def seed(self, positions: Iterable[Position]) -> list[dict[str, Any]]:
        """Add or overwrite positions; returns them as stored."""
        with self._lock:
            items = [self._stamped(position) for position in positions]
            for position in items:
                self._positions[position.id] = position
            self._persist()
        return [p.to_dict() for p in items]

    def get(self, position_id: str) -> dict[str, Any]:
        """One position, embed credentials included.

        :raises UnknownPositionError: when there is none with this id.
        """
        with self._lock:
            position = self._positions.get(position_id)
        if position is None:
            raise UnknownPositionError(position_id)
        return position.to_dict()

    def all(self) -> list[dict[str, Any]]:
        """Every position, in seeding order, embed credentials included."""
        with self._lock:
            positions = list(self._positions.values())
        return [p.to_dict() for p in positions]

    def clear(self) -> None:
        """Forget every position."""
        with self._lock:
            self._positions.clear()
            self._persist()

    def set_state(self, position_id: str, status: str | None, is_embedded: bool | None) -> dict[str, Any]:
        """Apply a validated set-state request atomically; returns the API's 200 body.

        :param position_id: canonical id.
        :param status: new status, or ``None`` to keep it.
        :param is_embedded: ``True`` ensures an embed key (kept if one exists), ``False`` removes it,
            ``None`` leaves it alone.
        :raises UnknownPositionError: when there is no such position.
        """
        with self._lock:
            position = self._positions.get(position_id)
            if position is None:
                raise UnknownPositionError(position_id)
            changes: dict[str, Any] = {}
            if status is not None:
                changes["status"] = status
            if is_embedded is True and position.embed_id is None:
                changes["embed_id"], changes["embed_signing_key"] = new_embed_key()
            elif is_embedded is False and position.embed_id is not None:
                changes["embed_id"] = changes["embed_signing_key"] = None
            # Setting a status always counts as an update, as the API re-applies it; an embed
            # request that changes nothing (key already there, or already off) does not.
            if changes:
                position = replace(position, updated_at=self._stamp(position.updated_at), **changes)
                self._positions[position_id] = position
                self._persist()
        if is_embedded is True:
            return {"embed_id": position.embed_id, "embed_signing_key": position.embed_signing_key}
        return {"success": True}

    def admin_set_status(self, position_id: str, status: str) -> dict[str, Any]:
        """Change a status as JobMojito's admin app does (not through set-state); moves ``updated_at``.

        :param position_id: canonical id.
        :param status: a validated status (saving the current one again still counts as a change).
        :return: the position as stored.
        :raises UnknownPositionError: when there is no such position.
        """
        with self._lock:
            position = self._positions.get(position_id)
            if position is None:
                raise UnknownPositionError(position_id)
            position = replace(position, status=status, updated_at=self._stamp(position.updated_at))
            self._positions[position_id] = position
            self._persist()
        return position.to_dict()

    def query(self, *, status: str | None, type_: str, filter_text: str | None) -> list[dict[str, Any]]:
        """Positions matching the list filters, newest ``updated_at`` first (ties by id)."""
        with self._lock:
            positions = list(self._positions.values())
        needle = filter_text.casefold() if filter_text else None
        matching = [
            p
            for p in positions
            if p.type == type_
            and (status is None or p.status == status)
            and (needle is None or needle in p.name.casefold())
        ]
        matching.sort(key=lambda p: p.id)
        matching.sort(key=lambda p: p.updated_at, reverse=True)
        return [p.to_dict() for p in matching]


def parse_seed(data: object) -> list[Position]:
    """Positions from a seed document: ``{"positions": [...]}``, a list, or one position object.

    :raises ValidationError: when the document or any position in it is invalid.
    """
    if isinstance(data, Mapping) and "positions" in data:
        data = data["positions"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise ValidationError("positions", "Expected {'positions': [...]}, a list or one position object.")
    return [Position.from_seed(item) for item in data]
