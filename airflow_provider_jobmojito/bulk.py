"""Many state changes in one call: checking the whole batch, sending it in parallel, per-id results.

The hook's :meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.set_interview_states`
is the way in; this module holds what it returns and raises, so both can be imported (and caught)
without the hook:

* :class:`StateChangeResult`: one per position, in the order the ids were given;
* :class:`~airflow_provider_jobmojito.exceptions.JobMojitoBulkError` (re-exported here): raised
  once, after every position was attempted, when any failed. It is also an
  ``AirflowFailException`` (``JobMojitoPermanentBulkError``) when every failure is permanent, so
  Airflow spends its task retries only where a retry can help.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_jobmojito.exceptions import (
    MAX_LISTED_FAILURES,
    JobMojitoAuthError,
    JobMojitoBulkError,
    JobMojitoError,
    JobMojitoPermanentBulkError,
)
from airflow_provider_jobmojito.validation import StateChange, parse_position_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

#: Stands in for the ids while ``status`` and ``is_embedded`` are checked, so that the bulk call
#: checks them with exactly the single call's rules and messages.
_ANY_ID = "00000000-0000-0000-0000-000000000000"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateChangeResult:
    """What happened to one position of a bulk state change.

    :param position_id: the position's id, canonical lower-case.
    :param ok: whether the change was made.
    :param response: the API's answer when ``ok`` (``{"success": True}``, or the embed keys when
        embedding was switched on). Left out of ``repr`` because it can hold a signing key.
    :param error: why the change was not made, when not ``ok``.
    """

    position_id: str
    ok: bool
    response: dict[str, Any] | None = field(default=None, repr=False)
    error: JobMojitoError | None = None

    def __post_init__(self) -> None:
        if self.ok != (self.error is None) or self.ok != (self.response is not None):
            raise ValueError("A StateChangeResult has a response when ok, and an error when not.")

    @classmethod
    def succeeded(cls, position_id: str, response: dict[str, Any]) -> StateChangeResult:
        return cls(position_id, True, response, None)

    @classmethod
    def failed(cls, position_id: str, error: JobMojitoError) -> StateChangeResult:
        return cls(position_id, False, None, error)


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
    template = StateChange.build(_ANY_ID, status, is_embedded)

    canonical: list[str] = []
    bad: list[str] = []
    for index, value in enumerate(ids):
        try:
            canonical.append(parse_position_id(value, param=f"position_ids[{index}]"))
        except ValueError:
            bad.append(f"[{index}] {value!r}")
    if bad:
        listed = ", ".join(bad[:MAX_LISTED_FAILURES])
        more = f" and {len(bad) - MAX_LISTED_FAILURES} more" if len(bad) > MAX_LISTED_FAILURES else ""
        raise ValueError(
            f"position_ids must be UUIDs such as 3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e; "
            f"{len(bad)} of {len(ids)} are not: {listed}{more}."
        )

    first_seen: dict[str, int] = {}
    repeats: dict[str, list[int]] = {}
    for index, position_id in enumerate(canonical):
        first = first_seen.setdefault(position_id, index)
        if first != index:
            repeats.setdefault(position_id, [first]).append(index)
    if repeats:
        listed = ", ".join(
            f"{position_id} at {', '.join(map(str, where))}"
            for position_id, where in list(repeats.items())[:MAX_LISTED_FAILURES]
        )
        more = f" and {len(repeats) - MAX_LISTED_FAILURES} more" if len(repeats) > MAX_LISTED_FAILURES else ""
        raise ValueError(
            f"position_ids lists {len(repeats)} id(s) more than once (ids are compared as UUIDs, "
            f"so case and hyphens do not matter): {listed}{more}. Give each position once."
        )
    return [StateChange(position_id, template.status, template.is_embedded) for position_id in canonical]


def check_max_workers(max_workers: object) -> int:
    """``max_workers`` as a whole number of at least 1, or ``ValueError`` naming it."""
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a whole number of at least 1; got {max_workers!r}.")
    return max_workers


def apply_all(
    changes: Sequence[StateChange],
    apply: Callable[[StateChange], dict[str, Any]],
    *,
    max_workers: int,
    cancel: threading.Event | None = None,
) -> list[StateChangeResult]:
    """Apply every change, ``max_workers`` at a time; one result per change, in order.

    A :class:`JobMojitoError` fails only its own position, with one exception: refused
    credentials (:class:`JobMojitoAuthError`) would be refused for every position, so no further
    position is sent, and those never sent carry that same error. Once ``cancel`` is set no
    further position is sent either; those carry a "not sent" error. Any other exception (a bug,
    or an interrupt such as Airflow's task timeout in the calling thread) stops the workers from
    taking more positions, is logged with how far the batch got, and is raised as it is.

    :param cancel: set it from another thread (an operator's ``on_kill``) to stop sending; it is
        also set here when the calling thread is interrupted, to stop retries in flight.
    """
    results: list[StateChangeResult | None] = [None] * len(changes)
    next_index = iter(range(len(changes)))
    take_lock = threading.Lock()
    stop = threading.Event()
    cancelled = cancel or threading.Event()
    refused: list[JobMojitoAuthError] = []

    def work() -> None:
        while not stop.is_set() and not cancelled.is_set():
            with take_lock:
                index = next(next_index, None)
            if index is None:
                return
            change = changes[index]
            try:
                results[index] = StateChangeResult.succeeded(change.position_id, apply(change))
            except JobMojitoAuthError as error:
                results[index] = StateChangeResult.failed(change.position_id, error)
                refused.append(error)
                stop.set()
            except JobMojitoError as error:
                results[index] = StateChangeResult.failed(change.position_id, error)
            except BaseException:
                stop.set()
                raise

    try:
        _run(work, min(max_workers, len(changes)), stop, cancelled)
    except BaseException as interrupt:
        _log_interrupted(interrupt, results)
        raise
    unsent: JobMojitoError | None = None
    if refused:
        unsent = refused[0]
    elif cancelled.is_set():
        unsent = JobMojitoError("Not sent: the bulk change was cancelled (the task was stopped).")
    if unsent is not None:
        return [
            result or StateChangeResult.failed(change.position_id, unsent)
            for result, change in zip(results, changes, strict=True)
        ]
    done = [result for result in results if result is not None]
    if len(done) != len(changes):  # pragma: no cover - every worker ran to the end
        raise RuntimeError("A bulk state change ended with positions never attempted.")
    return done


def _run(work: Callable[[], None], workers: int, *stops: threading.Event) -> None:
    """Run ``work`` in ``workers`` threads (or in this one) and raise what any of them raised.

    An exception raised in this thread (a task timeout) sets ``stops``, waits for the workers
    already working to finish the call in hand, and is raised: nothing is sent afterwards.
    """
    if workers <= 1:
        work()
        return
    errors: list[BaseException] = []
    working = threading.Condition()
    active = 0

    def guarded() -> None:
        nonlocal active
        # Counted before ``work`` first looks at the stop events: a worker either is counted
        # when this thread waits below, or starts after the stop and sends nothing.
        with working:
            active += 1
        try:
            work()
        except BaseException as error:  # raised again in the calling thread
            errors.append(error)
        finally:
            with working:
                active -= 1
                working.notify_all()

    # Threads of our own rather than a ThreadPoolExecutor: an interrupt landing inside its
    # submit() can leave a started thread out of the set its shutdown() waits for.
    threads = [
        threading.Thread(target=guarded, name=f"jobmojito-bulk-{number}", daemon=True)
        for number in range(workers)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        for event in stops:
            event.set()
        with working:
            while active:
                working.wait()
        raise
    if errors:
        raise errors[0]


def _log_interrupted(interrupt: BaseException, results: Sequence[StateChangeResult | None]) -> None:
    """Say how far an interrupted batch got: no change may go unreported."""
    changed = [result.position_id for result in results if result is not None and result.ok]
    failed = sum(1 for result in results if result is not None and not result.ok)
    listed = ", ".join(changed[:MAX_LISTED_FAILURES])
    more = f" and {len(changed) - MAX_LISTED_FAILURES} more" if len(changed) > MAX_LISTED_FAILURES else ""
    log.error(
        "Bulk state change interrupted by %s: %d of %d position(s) changed%s, %d failed, %d not sent. "
        "Setting the same state again changes nothing, so running the task again is safe.",
        type(interrupt).__name__,
        len(changed),
        len(results),
        f" ({listed}{more})" if changed else "",
        failed,
        sum(1 for result in results if result is None),
    )


def failure_report(failed: Sequence[StateChangeResult], total: int) -> str:
    """The log summary: every failed id with its full error message, one per line."""
    lines = [f"{len(failed)} of {total} position(s) failed:"]
    lines.extend(f"  {result.position_id}: {result.error}" for result in failed)
    return "\n".join(lines)


__all__ = [
    "JobMojitoBulkError",
    "JobMojitoPermanentBulkError",
    "StateChangeResult",
    "apply_all",
    "build_changes",
    "check_max_workers",
    "failure_report",
]
