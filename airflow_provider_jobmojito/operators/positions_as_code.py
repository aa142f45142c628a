"""Positions as code: declare which positions should be in which status, plan, approve, apply.

The operators here only do the I/O (list the live positions, write the changes, log and return
the plan); every decision is in :mod:`airflow_provider_jobmojito.reconcile`.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSkipException, BaseOperator

from airflow_provider_jobmojito import reconcile
from airflow_provider_jobmojito.endpoints import MAX_PAGE_SIZE
from airflow_provider_jobmojito.exceptions import (
    JobMojitoArgumentError,
    JobMojitoDriftError,
    JobMojitoGuardrailError,
    first_of,
)
from airflow_provider_jobmojito.validation import (
    check_hook_params,
    check_literal_arguments,
    check_max_workers,
    is_literal,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

__all__ = ["PositionsDriftOperator", "ReconcilePositionsOperator"]


class ReconcilePositionsOperator(BaseOperator):
    """Take JobMojito positions to a desired state: list them, plan the difference, apply it.

    The task lists the positions of its scope (``position_type``, ``filter_text``) through
    ``merchant-interview-list``, 1,000 a page, and plans the changes that take them to
    ``desired``. It logs the plan as a table (position, name, from, to, why) and returns it as
    JSON: ``changes``, ``unchanged`` (a count), ``skipped`` (with reasons), ``listed``,
    ``managed``, ``scope``, ``applied`` (the changes written) and ``table`` (the plan as a
    Markdown table, for an approver). Unless ``dry_run``, it then
    writes only the changes, through the bulk path (bounded concurrency, the breaker, masking).
    A second run with nothing changed writes nothing.

    A desired id the listing does not show (unknown, another type, outside ``filter_text``) is
    reported as skipped and never written. A position in ``deleted`` or ``preparing`` is neither
    left nor entered unless ``allow_statuses`` names that status: a desired status that is
    protected fails the DAG import (or the task, when templated); a live position in one is
    skipped with the reason.

    **Approval.** Give ``approved_plan`` (a dry run's return value, e.g.
    ``"{{ ti.xcom_pull(task_ids='plan') }}"``) instead of ``desired`` to apply that plan, not a new
    one: the task lists the plan's scope again right before writing, and a planned position whose
    ``updated_at`` moved since the plan (or that is no longer listed) is reported as skipped and
    not overwritten. This is best effort: the API has no ETag or If-Match, so a change made
    between that listing and the write cannot be detected.

    **Embedding.** The listing does not say whether a position is embedded, so ``is_embedded`` in
    ``desired`` is sent with a status change of that position, and only then: a position already
    in its desired status is not written to, whatever its embedding.

    Literal arguments are checked when the DAG is parsed; templated ones after rendering, before
    any request. Nothing touches the network before the task runs.

    :param desired: the desired statuses: ``{position_id: status}``, a list of records
        (``position_id``, ``status``, optionally ``is_embedded``), ``{"positions": [records]}``,
        or the path of a ``.json``, ``.yaml`` or ``.yml`` file holding one of these, relative to
        the DAG file's folder, read when the task runs. Templated: an upstream task's output, or
        a Jinja expression rendering to JSON. Each id at most once.
    :param approved_plan: instead of ``desired``, a plan returned by an earlier (dry) run, to apply
        as it was approved. Templated.
    :param dry_run: plan only; write nothing.
    :param max_changes: a guardrail: more planned changes than this fail the task before any write.
        A whole number is a count; a float from 0 to 1 a fraction of the managed positions (those
        ``desired`` names and the listing shows, plus, with ``unmanaged="archive"``, those it
        would archive); ``None`` no limit.
    :param unmanaged: what happens to listed positions of the scope that ``desired`` does not
        name: ``"ignore"`` or ``"archive"``. Archiving needs a scope of its own: ``filter_text``
        or ``managed_ids``.
    :param position_type: the product type listed (the list's ``type``): the scope's first part.
    :param filter_text: list only positions whose name holds this text (the list's
        ``filter_text``), e.g. a marker like ``[ats]`` that the positions this DAG owns carry.
        Templated.
    :param managed_ids: the ids this reconcile owns, for ``unmanaged="archive"``: only they are
        archived when ``desired`` leaves them out. Templated.
    :param allow_statuses: the protected statuses (``deleted``, ``preparing``) this reconcile may
        leave or enter.
    :param max_workers: set-state calls in flight at once.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.
    :param hook_params: keyword arguments for the hook, over the connection's extras.
    """

    template_fields: Sequence[str] = (
        "desired",
        "approved_plan",
        "filter_text",
        "managed_ids",
        "jobmojito_conn_id",
    )
    ui_color = "#e9f5ff"

    def __init__(
        self,
        *,
        desired: Any = None,
        approved_plan: Any = None,
        dry_run: bool = False,
        max_changes: int | float | None = None,
        unmanaged: str = "ignore",
        position_type: str = "interview",
        filter_text: str | None = None,
        managed_ids: Collection[str] | None = None,
        allow_statuses: Collection[str] = (),
        max_workers: int = 8,
        jobmojito_conn_id: str = "jobmojito_default",
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.desired = desired
        self.approved_plan = approved_plan
        # Not ``self.dry_run``: that is BaseOperator's method (``airflow tasks test --dry-run``).
        self.plan_only = dry_run
        self.max_changes = max_changes
        self.unmanaged = unmanaged
        self.position_type = position_type
        self.filter_text = filter_text
        self.managed_ids = managed_ids
        self.allow_statuses = allow_statuses
        self.max_workers = max_workers
        self.jobmojito_conn_id = jobmojito_conn_id
        self.hook_params: Mapping[str, Any] = {} if hook_params is None else hook_params
        self._check_literals()

    def _owner(self) -> str:
        return f"{type(self).__name__} {self.task_id!r}: "

    def _check_literals(self) -> None:
        """Fail the DAG import on a literal argument that can never work."""
        owner = self._owner()
        if (self.desired is None) == (self.approved_plan is None):
            raise JobMojitoArgumentError(
                f"{owner}give exactly one of desired (the state to reach) or approved_plan (a plan "
                f"to apply); got {'both' if self.desired is not None else 'neither'}."
            )
        if not isinstance(self.plan_only, bool):
            raise JobMojitoArgumentError(f"{owner}dry_run must be True or False; got {self.plan_only!r}.")
        check_literal_arguments(vars(self), _LITERAL_CHECKS, owner=owner)
        try:
            # Not templated, so checked whatever it holds (a Jinja string here is never rendered).
            reconcile.check_max_changes(self.max_changes)
            allowed = reconcile.parse_allow_statuses(self.allow_statuses)
            reconcile.check_unmanaged(
                self.unmanaged, filter_text=self.filter_text, managed_ids=self.managed_ids
            )
            if self.desired is not None and _is_literal_throughout(self.desired):
                if isinstance(self.desired, str):
                    reconcile.check_spec_path(self.desired)
                else:
                    wanted = reconcile.parse_desired(self.desired)
                    reconcile.check_protected_targets(wanted, allowed)
                    reconcile.check_not_empty_for_archive(wanted, self.unmanaged)
        except ValueError as exc:
            raise JobMojitoArgumentError(f"{owner}{exc}") from None

    @cached_property
    def hook(self) -> JobMojitoHook:
        """The hook of this task (built on first use: it reads no connection until a call)."""
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        return JobMojitoHook(self.jobmojito_conn_id, **self.hook_params)

    # -- run time ----------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        the_plan = self.make_plan()
        # For a person (an approver's body: ``{{ ti.xcom_pull(task_ids='plan')['table'] }}``).
        the_plan["table"] = reconcile.render_table(the_plan)
        self.log.info("Plan%s:\n%s", " (dry run)" if self.plan_only else "", the_plan["table"])
        if problem := reconcile.guardrail_error(the_plan, self.max_changes):
            raise JobMojitoGuardrailError(f"{self._owner()}{problem}")
        the_plan["applied"] = 0
        if self.plan_only or not the_plan["changes"]:
            self.log.info("Nothing written: %s.", "dry run" if self.plan_only else "no change to make")
            return the_plan
        results = self.hook.apply_many(
            reconcile.state_changes(the_plan["changes"]), max_workers=self.max_workers
        )
        the_plan["applied"] = len(results)
        self.log.info("Applied %d change(s).", len(results))
        return the_plan

    def make_plan(self) -> dict[str, Any]:
        """List the scope's positions and plan (or, with ``approved_plan``, re-check that plan).

        Every rendered argument is checked before the listing: a bad one fails the task, without
        retries, before any request.
        """
        try:
            allowed = reconcile.parse_allow_statuses(self.allow_statuses)
            if self.approved_plan is not None:
                approved = reconcile.parse_plan(self.approved_plan)
                scope = dict(approved.get("scope") or self._scope())
                rechecked = reconcile.recheck(approved, self._list(scope), allow_statuses=allowed)
                return {**rechecked, "scope": scope}
            wanted = self._rendered_desired()
            reconcile.check_protected_targets(wanted, allowed)
            managed_ids = reconcile.parse_managed_ids(reconcile.decode_rendered(self.managed_ids))
            reconcile.check_unmanaged(self.unmanaged, filter_text=self.filter_text, managed_ids=managed_ids)
            reconcile.check_not_empty_for_archive(wanted, self.unmanaged)
            scope = self._scope()
        except ValueError as exc:
            raise JobMojitoArgumentError(f"{self._owner()}{exc}") from None
        the_plan = reconcile.plan(
            wanted,
            self._list(scope),
            unmanaged=self.unmanaged,
            managed_ids=managed_ids,
            allow_statuses=allowed,
        )
        return {**the_plan, "scope": scope}

    def _scope(self) -> dict[str, str]:
        scope = {"type": reconcile.check_position_type(self.position_type)}
        if self.filter_text:
            if not isinstance(self.filter_text, str):
                raise ValueError(f"filter_text must be a string; got {self.filter_text!r}.")
            scope["filter_text"] = self.filter_text
        return scope

    def _rendered_desired(self) -> dict[str, reconcile.Desired]:
        value = reconcile.decode_rendered(self.desired)
        if isinstance(value, str | os.PathLike):
            value = reconcile.load_spec_file(os.fspath(value), self._dag_folder())
        return reconcile.parse_desired(value)

    def _dag_folder(self) -> str | None:
        """The folder of the DAG file, which a relative spec path is read from."""
        fileloc = getattr(self.get_dag(), "fileloc", None)
        return os.path.dirname(fileloc) if fileloc else None

    def _list(self, scope: Mapping[str, str]) -> dict[str, reconcile.Live]:
        """Every position of ``scope``, through the bounded pager: ceil(N / 1,000) list calls."""
        filters = {"type": scope["type"]}
        if scope.get("filter_text"):
            filters["filter_text"] = scope["filter_text"]
        pages = self.hook.iter_interview_pages(page_size=MAX_PAGE_SIZE, **filters)
        rows = (row for page in pages for row in page.get("data") or [])
        return reconcile.index_live(row for row in rows if isinstance(row, dict))

    def on_kill(self) -> None:
        """Stop the writes: positions not yet sent are not sent, and the task fails saying so."""
        self.hook.cancel()


class PositionsDriftOperator(ReconcilePositionsOperator):
    """Report where the live positions differ from ``desired``, for DAGs that alert rather than fix.

    Plans as :class:`ReconcilePositionsOperator` does (same arguments, except that it never writes,
    so ``dry_run``, ``approved_plan`` and ``max_changes`` are not taken) and, when the plan has any
    change or skipped position:

    - ``on_drift="fail"`` (the default): fails, listing the differences
      (:class:`~airflow_provider_jobmojito.exceptions.JobMojitoDriftError`, not retried);
    - ``on_drift="event"``: succeeds, and puts the differences in the extra of an asset event on
      each of the task's ``outlets``; without drift the task is skipped, so no event is emitted.

    Either way it returns the plan.

    :param on_drift: ``"fail"`` or ``"event"``.
    """

    def __init__(self, *, on_drift: str = "fail", **kwargs: Any) -> None:
        for name in ("dry_run", "approved_plan", "max_changes"):
            if name in kwargs:
                raise JobMojitoArgumentError(
                    f"{type(self).__name__} {kwargs.get('task_id')!r}: {name} is not taken; a drift "
                    "check never writes."
                )
        if on_drift not in _DRIFT_POLICIES:
            raise JobMojitoArgumentError(
                f"{type(self).__name__} {kwargs.get('task_id')!r}: on_drift must be one of "
                f"{', '.join(_DRIFT_POLICIES)}; got {on_drift!r}."
            )
        super().__init__(dry_run=True, **kwargs)
        self.on_drift = on_drift
        if on_drift == "event" and not self.outlets:
            raise JobMojitoArgumentError(
                f'{self._owner()}on_drift="event" needs outlets, the assets to emit on.'
            )

    def execute(self, context: Context) -> dict[str, Any]:
        the_plan = self.make_plan()
        differences = reconcile.drift(the_plan)
        if not differences:
            self.log.info("No drift: %d position(s) as desired.", the_plan["unchanged"])
            if self.on_drift == "event":
                raise AirflowSkipException("No drift: no asset event.")
            return the_plan
        self.log.warning("Drift:\n%s", reconcile.render_table(the_plan))
        if self.on_drift == "fail":
            raise JobMojitoDriftError(
                f"{self._owner()}{len(differences)} position(s) differ from desired: {first_of(differences)}"
            )
        for outlet in self.outlets:
            extra: dict[str, Any] = {"drift": differences, "changes": the_plan["changes"]}
            context["outlet_events"][outlet].extra = extra
        return the_plan


_DRIFT_POLICIES = ("fail", "event")


def _is_literal_throughout(value: object) -> bool:
    """Whether ``value`` and everything in it is literal: Airflow renders the values inside a
    templated mapping or list (``{id: "{{ params.status }}"}``), and resolves upstream outputs there."""
    if isinstance(value, dict):
        return all(is_literal(key) and _is_literal_throughout(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(_is_literal_throughout(item) for item in value)
    return is_literal(value)


#: The check of each argument whose literal value can be known when the DAG is parsed.
_LITERAL_CHECKS: dict[str, Callable[[Any], object]] = {
    "approved_plan": reconcile.parse_plan,
    "position_type": reconcile.check_position_type,
    "managed_ids": reconcile.parse_managed_ids,
    "max_workers": check_max_workers,
    "hook_params": check_hook_params,
}
