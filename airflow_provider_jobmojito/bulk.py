"""Many state changes in one call: sending a checked batch in parallel, with per-id results.

The hook's :meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.set_interview_states`
is the way in (the batch is checked by :func:`~airflow_provider_jobmojito.validation.build_changes`).
This module holds what it returns, :class:`StateChangeResult`, one per position in the order the
ids were given. What it raises, :class:`~airflow_provider_jobmojito.exceptions.JobMojitoBulkError`,
lives with the other errors.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_jobmojito import exceptions
from airflow_provider_jobmojito.exceptions import (
    JobMojitoAuthError,
    JobMojitoError,
    JobMojitoUnavailableError,
    first_of,
)
from airflow_provider_jobmojito.masking import SecretBatch
from airflow_provider_jobmojito.retry import Stop

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_jobmojito.client import JobMojitoClient
    from airflow_provider_jobmojito.endpoints import Endpoints
    from airflow_provider_jobmojito.validation import StateChange

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


def change_all(
    client: JobMojitoClient,
    endpoints: Endpoints,
    changes: Sequence[StateChange],
    *,
    workers: int,
    stop: Stop,
    log: Any,
) -> list[StateChangeResult]:
    """Set every change through ``client``, ``workers`` calls at a time: what the hook's
    :meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.set_interview_states` does.

    A token is got once, before the threads start: a missing, expired or refused credential
    fails the whole call there instead of once per position. The signing keys are registered with
    the secret masker together, once every position was attempted (one regex compile, not one per
    key), and before the results are returned or raised: nothing logs a key before then.

    :param stop: cancelled by the hook's ``cancel()``; its breaker trips when the API is down.
    :param log: where the summary and the failures are logged (the hook's logger).
    :raises JobMojitoBulkError: after every position was attempted, when any failed.
    """
    client.run(endpoints.authenticate(stop))
    log.info("Setting %d position(s) -> %s, %d call(s) at a time.", len(changes), changes[0].summary, workers)
    started = time.monotonic()
    masking_started: float | None = None
    with SecretBatch() as signing_keys:

        def apply(change: StateChange) -> dict[str, Any]:
            return client.run(endpoints.set_state(change, stop=stop), on_secret=signing_keys.add)

        results = apply_all(changes, apply, max_workers=workers, stop=stop)
        masking_started = time.monotonic()
        keys = signing_keys.pending
    # Timed apart: registering keys with Airflow's masker can take far longer than the calls
    # (42.97 s reported for 1,000 positions whose calls took under 2 s).
    api_seconds = masking_started - started
    masking_seconds = time.monotonic() - masking_started
    failed = [result for result in results if not result.ok]
    if failed:
        log.error("%s", failure_report(failed, len(results)))
        raise exceptions.JobMojitoBulkError.from_results(results)
    log.info(
        "Changed %d position(s) in %.2f s of API calls; registering %d signing key(s) with the "
        "secret masker took %.2f s.",
        len(results),
        api_seconds,
        keys,
        masking_seconds,
    )
    return results


def apply_all(
    changes: Sequence[StateChange],
    apply: Callable[[StateChange], dict[str, Any]],
    *,
    max_workers: int,
    stop: Stop | None = None,
) -> list[StateChangeResult]:
    """Apply every change, ``max_workers`` at a time; one result per change, in order.

    A :class:`JobMojitoError` fails only its own position, with one exception: refused
    credentials (:class:`JobMojitoAuthError`) would be refused for every position, so no further
    position is sent, and those never sent carry that same error. Once ``stop`` is set no
    further position is sent either; those carry a "not sent" error. Any other exception (a bug,
    or an interrupt such as Airflow's task timeout in the calling thread) stops the workers from
    taking more positions, is logged with how far the batch got, and is raised as it is.

    :param stop: cancel it from another thread (an operator's ``on_kill``) to stop sending, or let
        its breaker trip when the API is down (the calls report their failures to it); it is
        also set here when the calling thread is interrupted, to stop retries in flight.
    """
    results: list[StateChangeResult | None] = [None] * len(changes)
    next_index = iter(range(len(changes)))
    take_lock = threading.Lock()
    stop_workers = threading.Event()
    cancelled = stop or Stop()
    refused: list[JobMojitoAuthError] = []

    def work() -> None:
        while not stop_workers.is_set() and not cancelled.is_set():
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
                stop_workers.set()
            except JobMojitoError as error:
                results[index] = StateChangeResult.failed(change.position_id, error)
            except BaseException:
                stop_workers.set()
                raise

    try:
        _run(work, min(max_workers, len(changes)), stop_workers, cancelled.event)
    except BaseException as interrupt:
        _log_interrupted(interrupt, results)
        raise
    unsent: JobMojitoError | None = None
    if refused:
        unsent = refused[0]
    elif cancelled.tripped:
        # Transient, like the failures that tripped it: Airflow's task retries may help.
        unsent = JobMojitoUnavailableError(f"Not sent: {cancelled.reason}.")
    elif cancelled.is_set():
        unsent = JobMojitoError(f"Not sent: {cancelled.reason}.")
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
    log.error(
        "Bulk state change interrupted by %s: %d of %d position(s) changed%s, %d failed, %d not sent. "
        "Setting the same state again changes nothing, so running the task again is safe.",
        type(interrupt).__name__,
        len(changed),
        len(results),
        f" ({first_of(changed)})" if changed else "",
        failed,
        sum(1 for result in results if result is None),
    )


def failure_report(failed: Sequence[StateChangeResult], total: int) -> str:
    """The log summary: every failed id with its full error message, one per line."""
    lines = [f"{len(failed)} of {total} position(s) failed:"]
    lines.extend(f"  {result.position_id}: {result.error}" for result in failed)
    return "\n".join(lines)


__all__ = ["StateChangeResult", "apply_all", "change_all", "failure_report"]
