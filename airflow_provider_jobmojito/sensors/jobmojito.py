"""A sensor that waits for a JobMojito position to reach a status."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_jobmojito.exceptions import JobMojitoArgumentError, JobMojitoError, JobMojitoWaitError
from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import (
    check_hook_params,
    check_literal_arguments,
    is_literal,
    parse_position_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

#: The shortest ``poke_interval`` this sensor takes in ``mode="reschedule"`` (seconds). Airflow's
#: open issue apache/airflow#71172: a reschedule that comes due before the scheduler recorded the
#: previous try makes it fail the task ("finished with state success, but the task instance's
#: state attribute is scheduled"); with poke_interval=5, 266 of 300 mapped sensors were lost on one
#: machine. The window is the scheduler's and executor's lag, seconds under load; a minute is
#: also what Airflow's own documentation of ``mode`` asks of reschedule sensors ("more than one
#: minute to prevent too much load on the scheduler"). Airflow's default poke_interval is 60.
SAFE_RESCHEDULE_INTERVAL = 60.0

#: The sensor's arguments whose literal values can be checked when the DAG is parsed.
_LITERAL_CHECKS: dict[str, Callable[[Any], object]] = {
    "position_id": parse_position_id,
    "status": lambda value: InterviewStatus.parse_many(value, param="status"),
    "failure_status": lambda value: InterviewStatus.parse_many(value, param="failure_status"),
    "hook_params": check_hook_params,
}


def _seconds(value: object) -> float | None:
    """A ``poke_interval`` as seconds, as Airflow takes it (a number or a ``timedelta``);
    ``None`` when it is neither (Airflow refuses it itself)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _check_reschedule(
    owner: str, mode: object, poke_interval: object, deferrable: object, allowed: object
) -> None:
    """Refuse ``mode="reschedule"`` below :data:`SAFE_RESCHEDULE_INTERVAL` (see there why)."""
    if mode != "reschedule" or deferrable is True or allowed is True:
        return  # a deferred wait never reschedules: the trigger waits, whatever the mode
    seconds = _seconds(poke_interval)
    if seconds is not None and seconds < SAFE_RESCHEDULE_INTERVAL:
        raise JobMojitoArgumentError(
            f"{owner}mode='reschedule' with poke_interval={seconds:g} s is below the safe floor of "
            f"{SAFE_RESCHEDULE_INTERVAL:g} s: Airflow loses reschedule-mode sensors that poke this "
            "often (apache/airflow#71172). Use deferrable=True (it frees the worker slot too, and "
            f"polls in the triggerer), or poke_interval >= {SAFE_RESCHEDULE_INTERVAL:g}, or pass "
            "allow_short_reschedule=True to take the risk."
        )


class InterviewStateSensor(BaseSensorOperator):
    """Wait until a JobMojito position's status is one of ``status``.

    Reads ``GET job-interview-get`` every ``poke_interval``. Succeeds when the status is one of
    ``status``, returning ``{"position_id", "status"}`` (its XCom return value). Reaching one of
    ``failure_status`` fails the task at once, without Airflow retries; so does a position the API
    does not know or hides (404), and any other permanent API error. Transient API errors (the
    API down, throttling, a 5xx) are retried inside a poke and never end the wait early: the same
    :attr:`~airflow_provider_jobmojito.exceptions.JobMojitoError.transient` decides in both modes.

    With ``deferrable=True`` the wait happens in the triggerer
    (:class:`~airflow_provider_jobmojito.triggers.jobmojito.InterviewStateTrigger`), which frees
    the worker slot; ``timeout`` is honoured there too. Sensors waiting on one connection with
    the same ``poke_interval`` share one list call per interval in the triggerer. Both modes keep
    one contract: a failure status or a permanent error fails the task without retries, or skips
    it with ``soft_fail=True``, whether it is seen by the first read or later.

    ``mode="reschedule"`` with a ``poke_interval`` under :data:`SAFE_RESCHEDULE_INTERVAL` (60 s)
    is refused when the DAG is parsed, whether given to the sensor, to ``partial()`` or in the
    DAG's or a task group's ``default_args``: Airflow loses such sensors (apache/airflow#71172).
    Values given to ``expand()`` are known only when each instance is built, which then fails
    without retries. Prefer ``deferrable=True``.

    :param position_id: the interview or position id (a UUID). Templated.
    :param status: the status to wait for, or a list of them (default ``active``). Templated.
    :param failure_status: a status, or a list, that fails the task at once. Templated.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.
    :param deferrable: wait in the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param hook_params: keyword arguments for the hook (``timeout``, ``max_retries``...), named
        after the connection's extras; checked when the DAG is parsed.
    :param allow_short_reschedule: take ``mode="reschedule"`` with a ``poke_interval`` under
        :data:`SAFE_RESCHEDULE_INTERVAL` anyway, knowing Airflow may lose the task.
    """

    template_fields: Sequence[str] = ("position_id", "status", "failure_status", "jobmojito_conn_id")
    ui_color = "#e9f5ff"

    def __init__(
        self,
        *,
        position_id: str,
        status: str | Sequence[str] = "active",
        failure_status: str | Sequence[str] | None = None,
        jobmojito_conn_id: str = "jobmojito_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        hook_params: Mapping[str, Any] | None = None,
        allow_short_reschedule: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.position_id = position_id
        self.status = status
        self.failure_status = failure_status
        self.jobmojito_conn_id = jobmojito_conn_id
        self.deferrable = deferrable
        self.hook_params: Mapping[str, Any] = {} if hook_params is None else hook_params
        self.allow_short_reschedule = allow_short_reschedule
        owner = f"{type(self).__name__} {self.task_id!r}: "
        # hook_params is not templated: checked once, here (a mapped instance runs this too).
        check_literal_arguments({"hook_params": self.hook_params}, _LITERAL_CHECKS, owner=owner)
        _check_reschedule(owner, self.mode, self.poke_interval, self.deferrable, allow_short_reschedule)
        self._check(literal_only=True)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """Start a mapped sensor, checking the literal arguments given here first.

        ``__init__`` runs only when the mapped instances do, so without this a DAG with
        ``.partial(status="actve")``, or ``mode="reschedule"`` and ``poke_interval=5`` in its
        ``default_args``, would import, and each instance fail at run time.
        """
        partial = super().partial(**kwargs)
        # Airflow found the DAG and task group (given, or the ones this is built in), and the
        # task's full id in them.
        dag, group = partial.kwargs.get("dag"), partial.kwargs.get("task_group")
        owner = f"{cls.__name__} {partial.kwargs.get('task_id')!r}: "
        # The mapped instances take the DAG's and task group's default_args; those given to
        # partial() count too, as the user meant them (Airflow keeps only BaseOperator's of them).
        arguments = {
            **(getattr(dag, "default_args", None) or {}),
            **(getattr(group, "default_args", None) or {}),
            **(kwargs.get("default_args") or {}),
            **kwargs,
        }
        try:
            check_literal_arguments(kwargs, _LITERAL_CHECKS, owner=owner)
            _check_shared_statuses(owner, kwargs.get("status", "active"), kwargs.get("failure_status"))
            _check_reschedule(
                owner,
                arguments.get("mode"),
                arguments.get("poke_interval", SAFE_RESCHEDULE_INTERVAL),
                arguments.get(
                    "deferrable", conf.getboolean("operators", "default_deferrable", fallback=False)
                ),
                arguments.get("allow_short_reschedule", False),
            )
        except JobMojitoArgumentError:
            # Refused: it will never be expanded, so Airflow need not warn that it never was.
            with contextlib.suppress(AttributeError):
                partial._expand_called = True
            raise
        return partial

    def _check(self, *, literal_only: bool) -> tuple[str, list[str], list[str]]:
        """The arguments, checked: at construction the literal ones (a bad one fails the DAG's
        import), after rendering all of them (a bad one fails the task without retries)."""
        try:
            position_id = status = failure = None
            if not literal_only or is_literal(self.position_id):
                position_id = parse_position_id(self.position_id)
            if not literal_only or is_literal(self.status):
                status = InterviewStatus.parse_many(self.status, param="status")
            if self.failure_status is not None and (not literal_only or is_literal(self.failure_status)):
                failure = InterviewStatus.parse_many(self.failure_status, param="failure_status")
        except ValueError as exc:
            raise JobMojitoArgumentError(f"{type(self).__name__} {self.task_id!r}: {exc}") from None
        _check_shared_statuses(f"{type(self).__name__} {self.task_id!r}: ", status, failure)
        return position_id or "", status or [], failure or []

    @cached_property
    def hook(self) -> JobMojitoHook:
        """The hook of this task (built on first use: it reads no connection until a call)."""
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        return JobMojitoHook(self.jobmojito_conn_id, **self.hook_params)

    def poke(self, context: Context) -> PokeReturnValue:
        position_id, wanted, failure = self._check(literal_only=False)
        try:
            interview = self.hook.get_interview(position_id)
        except JobMojitoError as error:
            if not error.transient:
                raise  # a permanent error (an AirflowFailException): no retry could fix it
            # The hook already retried; the wait goes on at the next poke.
            self.log.warning("Position %s: %s; poking again in %s s.", position_id, error, self.poke_interval)
            return PokeReturnValue(is_done=False)
        status = interview.get("status")
        return self._outcome(position_id, status, wanted, failure)

    def _outcome(
        self, position_id: str, status: object, wanted: list[str], failure: list[str]
    ) -> PokeReturnValue:
        if status in failure:
            raise AirflowFailException(
                f"Position {position_id} reached the failure status {status!r} "
                f"(waiting for {', '.join(wanted)})."
            )
        if status in wanted:
            self.log.info("Position %s is %s.", position_id, status)
            return PokeReturnValue(is_done=True, xcom_value={"position_id": position_id, "status": status})
        self.log.info("Position %s is %s; waiting for %s.", position_id, status, ", ".join(wanted))
        return PokeReturnValue(is_done=False)

    def execute(self, context: Context) -> Any:  # noqa: RET503 - defer() raises
        if not self.deferrable:
            return super().execute(context)
        # One read first: a position already there needs no trigger.
        try:
            first = self.poke(context)
        except AirflowFailException as error:
            # What BaseSensorOperator.execute does with a poke's failure, and resume_execution with
            # the trigger's: soft_fail (and 3.x's never_fail) skip; it is not otherwise retried.
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping (soft_fail): {error}") from error
            raise
        if first.is_done:
            return first.xcom_value
        from airflow_provider_jobmojito.triggers.jobmojito import InterviewStateTrigger

        position_id, wanted, failure = self._check(literal_only=False)
        timeout = float(self.timeout) if self.timeout is not None else None
        self.defer(
            trigger=InterviewStateTrigger(
                position_id=position_id,
                status=wanted,
                failure_status=failure,
                jobmojito_conn_id=self.jobmojito_conn_id,
                poll_interval=float(self.poke_interval),
                deadline=None if timeout is None else time.time() + timeout,
                hook_params=dict(self.hook_params),
            ),
            method_name="execute_complete",
            # A second bound: the trigger gives up at its deadline; this one holds if it cannot.
            timeout=None
            if timeout is None
            else timedelta(seconds=timeout + max(60.0, float(self.poke_interval))),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: succeed, or fail as a poke would have.

        Reads the event as :class:`~airflow_provider_jobmojito.triggers.jobmojito.WaitOutcome`
        does, so an event fired before an upgrade from 1.0.0 (``"status"`` holding the outcome)
        resumes the task too. An ``error`` fails the task without Airflow retries
        (:class:`JobMojitoWaitError`) unless the event says it was transient; 1.0.0 ended a wait
        only on errors it did not retry, so its error events are permanent.
        """
        from airflow_provider_jobmojito.triggers.jobmojito import WaitOutcome

        try:
            outcome = WaitOutcome.from_event(event)
        except ValueError as exc:
            raise JobMojitoError(f"{type(self).__name__} {self.task_id!r}: {exc}") from None
        position_id, status = outcome.position_id, outcome.status
        if outcome.outcome == "success":
            self.log.info("Position %s is %s.", position_id, status)
            return {"position_id": position_id, "status": status}
        if outcome.outcome == "failure":
            raise AirflowFailException(f"Position {position_id} reached the failure status {status!r}.")
        if outcome.outcome == "timeout":
            raise AirflowSensorTimeout(
                f"Position {position_id}: the sensor timed out after {self.timeout} s "
                f"(last read status: {status!r})."
            )
        message = f"Position {position_id}: {outcome.message or 'the wait ended on an API error.'}"
        if outcome.transient:
            raise JobMojitoError(message)
        raise JobMojitoWaitError(message)


def _check_shared_statuses(owner: str, status: object, failure_status: object) -> None:
    """A status both waited for and failing can never mean one thing: refuse it (literal only)."""
    if status is None or failure_status is None or not (is_literal(status) and is_literal(failure_status)):
        return
    try:
        shared = set(InterviewStatus.parse_many(status, param="status")) & set(
            InterviewStatus.parse_many(failure_status, param="failure_status")
        )
    except ValueError as exc:
        raise JobMojitoArgumentError(f"{owner}{exc}") from None
    if shared:
        raise JobMojitoArgumentError(f"{owner}status and failure_status share {sorted(shared)}.")
