"""A sensor that waits for a JobMojito position to reach a status."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_jobmojito.exceptions import JobMojitoArgumentError, JobMojitoError, JobMojitoWaitError
from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import is_literal, parse_position_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook


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
    the same ``poke_interval`` share one list call per interval in the triggerer.

    :param position_id: the interview or position id (a UUID). Templated.
    :param status: the status to wait for, or a list of them (default ``active``). Templated.
    :param failure_status: a status, or a list, that fails the task at once. Templated.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.
    :param deferrable: wait in the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param hook_params: keyword arguments for the hook (``timeout``, ``max_retries``...).
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.position_id = position_id
        self.status = status
        self.failure_status = failure_status
        self.jobmojito_conn_id = jobmojito_conn_id
        self.deferrable = deferrable
        self.hook_params: Mapping[str, Any] = {} if hook_params is None else hook_params
        self._check(literal_only=True)

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
                if status and set(status) & set(failure):
                    raise ValueError(f"status and failure_status share {sorted(set(status) & set(failure))}.")
        except ValueError as exc:
            raise JobMojitoArgumentError(f"{type(self).__name__} {self.task_id!r}: {exc}") from None
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
        first = self.poke(context)
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
