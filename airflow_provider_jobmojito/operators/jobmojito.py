"""Operators that change JobMojito interview positions: lifecycle status and iframe embedding."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_jobmojito.exceptions import JobMojitoArgumentError, JobMojitoBulkError
from airflow_provider_jobmojito.links.jobmojito import EmbeddedInterviewLink, record_pushed_embed_url
from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import (
    StateChange,
    build_changes,
    check_hook_params,
    check_literal_arguments,
    check_max_workers,
    is_literal,
    parse_is_embedded,
    parse_position_id,
    require_a_change,
)

# Defined in xcom.py, which the link reads too, so that it need not import this module (which
# imports the link); users import them from here, as since 1.0.0: see __all__.
from airflow_provider_jobmojito.xcom import (
    XCOM_EMBED_ID,
    XCOM_EMBED_IDS,
    XCOM_EMBED_SIGNING_KEY,
    XCOM_EMBED_SIGNING_KEYS,
    XCOM_EMBED_URL,
    XCOM_EMBED_URLS,
    XCOM_RESULTS,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_jobmojito.bulk import StateChangeResult
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

# The public names; the XCom keys are imported, so without __all__ type checkers would not
# count them as this module's (mypy's strict no_implicit_reexport).
__all__ = [
    "MAP_INDEX_TEMPLATE",
    "XCOM_EMBED_ID",
    "XCOM_EMBED_IDS",
    "XCOM_EMBED_SIGNING_KEY",
    "XCOM_EMBED_SIGNING_KEYS",
    "XCOM_EMBED_URL",
    "XCOM_EMBED_URLS",
    "XCOM_RESULTS",
    "EmbedOperator",
    "SetInterviewStateOperator",
]

#: Mapped instances are labelled by the position they change (or how many, in bulk).
MAP_INDEX_TEMPLATE = "{{ task.position_label }}"


def _rendered_bool(value: object) -> object:
    """Read a rendered ``"True"``/``"false"`` back as a bool: Jinja renders to strings."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _rendered_none(value: object) -> object:
    """Read a rendered ``"None"`` (or nothing) back as ``None``, "leave it as it is": Jinja
    renders a ``None`` param to the string ``"None"``."""
    if isinstance(value, str) and value.strip() in ("", "None"):
        return None
    return value


class SetInterviewStateOperator(BaseOperator):
    """Set JobMojito positions' lifecycle status and/or iframe embedding: one, or many in bulk.

    Give ``position_id`` for one position, or ``position_ids`` for many: they are changed in
    parallel, ``max_workers`` calls at a time, in one task. Prefer mapping
    (``.partial(...).expand(position_id=[...])``) for per-position retries and visibility, and
    ``position_ids`` for hundreds of positions, where mapping's scheduling cost per task adds up.

    Literal arguments are checked when the operator is built, so a DAG with ``status="actve"``
    fails to import; templated ones are checked after rendering, before any request. Nothing
    touches the network until the task runs.

    When the API returns embed keys (``is_embedded=True``), a single-position task pushes the XCom
    keys ``embed_id``, ``embed_signing_key`` (unless ``push_signing_key=False``) and ``embed_url``;
    a bulk task pushes ``embed_ids``, ``embed_signing_keys`` and ``embed_urls``, each a dict by
    position id. Return values never hold a signing key. With ``do_xcom_push=False`` the task
    pushes nothing at all.

    The task's extra link "Embedded interview" opens its ``embed_url``; it is absent when the task
    pushed none (bulk, embedding switched off or left alone, ``do_xcom_push=False``).

    :param position_id: the interview or position id (a UUID). Templated.
    :param position_ids: instead of ``position_id``, a list of ids, each at most once (a literal
        list or an upstream task's output). Templated.
    :param status: one of ``draft, active, archived, deleted, preparing, completed``, or ``None``
        to leave the status as it is. Templated.
    :param is_embedded: ``True`` switches embedding on (the existing key is kept), ``False`` off
        (the key is deleted), ``None`` leaves it. Templated; a rendered ``"true"``/``"false"``
        counts as the bool.
    :param max_workers: with ``position_ids``, the calls in flight at once.
    :param push_signing_key: push signing keys to XCom when the API returns them. Anyone who can
        read this task's XComs can read them: see the XCom section of the documentation's
        Operators page.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.
    :param hook_params: keyword arguments for the hook, over the connection's extras: this task's
        ``timeout``, ``max_retries``, ``backoff_factor``, ``backoff_max``...
    """

    template_fields: Sequence[str] = (
        "position_id",
        "position_ids",
        "status",
        "is_embedded",
        "jobmojito_conn_id",
    )
    ui_color = "#e9f5ff"
    #: "Embedded interview": the ``embed_url`` this task pushed (none in bulk, or switched off).
    operator_extra_links = (EmbeddedInterviewLink(),)

    def __init__(
        self,
        *,
        position_id: str | None = None,
        position_ids: Sequence[str] | None = None,
        status: InterviewStatus | str | None = None,
        is_embedded: bool | str | None = None,
        max_workers: int = 8,
        push_signing_key: bool = True,
        jobmojito_conn_id: str = "jobmojito_default",
        hook_params: Mapping[str, Any] | None = None,
        map_index_template: str | None = MAP_INDEX_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        # A default in this signature (not set in the body) is what partial() picks up for
        # mapped tasks too: Airflow reads operator defaults from the __init__ signatures.
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.position_id = position_id
        self.position_ids = position_ids
        self.status = status
        self.is_embedded = is_embedded
        self.max_workers = max_workers
        self.push_signing_key = push_signing_key
        self.jobmojito_conn_id = jobmojito_conn_id
        self.hook_params: Mapping[str, Any] = {} if hook_params is None else hook_params
        self._check_literals()

    @cached_property
    def hook(self) -> JobMojitoHook:
        """The hook of this task (built on first use: it reads no connection until a call)."""
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        return JobMojitoHook(self.jobmojito_conn_id, **self.hook_params)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """Start a mapped task; its instances are labelled by position id unless told otherwise.

        Airflow 3 takes the label's default from ``__init__``; Airflow 2's ``partial()`` passes
        ``map_index_template=None`` instead, so the default is given here too.
        """
        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        # __init__ runs only when the mapped instances do: check what is known now.
        _check_literal_values(kwargs)
        return super().partial(**kwargs)

    def _check_literals(self) -> None:
        """Fail DAG import on a literal argument that can never work (and a mapped instance
        built from one, without retries)."""
        if (self.position_id is None) == (self.position_ids is None):
            raise JobMojitoArgumentError(
                f"{type(self).__name__} {self.task_id!r}: give exactly one of position_id (one "
                "position) or position_ids (a list); got "
                f"{'both' if self.position_id is not None else 'neither'}."
            )
        _check_literal_values(vars(self))
        try:
            require_a_change(self.status, self.is_embedded)
        except ValueError as exc:
            raise JobMojitoArgumentError(f"{type(self).__name__} {self.task_id!r}: {exc}") from None

    def _rendered_status_and_embedding(self) -> tuple[object, object]:
        return _rendered_none(self.status), _rendered_none(_rendered_bool(self.is_embedded))

    def _rendered_change(self) -> StateChange:
        try:
            return StateChange.build(self.position_id, *self._rendered_status_and_embedding())
        except ValueError as exc:
            raise _permanent(self.task_id, exc) from exc

    def execute(self, context: Context) -> Any:
        # Nothing pushed yet: what the extra link reports if this try ends before a push.
        record_pushed_embed_url(self, "")
        if self.position_ids is not None:
            return self._execute_bulk(context, self.hook)
        change = self._rendered_change()
        hook = self.hook
        started = time.monotonic()
        answer = hook.apply(change)
        elapsed_ms = (time.monotonic() - started) * 1000
        result: dict[str, Any] = {"position_id": change.position_id}
        if change.status is not None:
            result["status"] = change.status.value
        if change.is_embedded is not None:
            result["is_embedded"] = change.is_embedded
        result.update(self._push_embed_keys(context, hook, answer))
        self.log.info("%s (%.0f ms)", change.describe(), elapsed_ms)
        return result

    @property
    def position_label(self) -> str:
        """What this task changes, for its map index label: the position id, or how many."""
        if self.position_id is not None:
            return str(self.position_id)
        # Airflow 3.0 also renders the label of an unmapped task, whose ids may still be an
        # upstream task's output rather than a list.
        if isinstance(self.position_ids, list | tuple):
            return f"{len(self.position_ids)} positions"
        return ""

    def on_kill(self) -> None:
        """Stop a bulk change from sending more positions; the task then fails with each
        position's result (those never sent say so)."""
        self.hook.cancel()

    def _push_embed_keys(
        self, context: Context, hook: JobMojitoHook, answer: dict[str, Any]
    ) -> dict[str, str]:
        """Push the embed keys first, so a later failure cannot lose a key the API just made."""
        embed_id = answer.get("embed_id")
        if not isinstance(embed_id, str):
            return {}
        embed_url = hook.embed_url(embed_id)
        if self.do_xcom_push:
            ti = context["ti"]
            ti.xcom_push(key=XCOM_EMBED_ID, value=embed_id)
            if self.push_signing_key:
                ti.xcom_push(key=XCOM_EMBED_SIGNING_KEY, value=answer["embed_signing_key"])
            ti.xcom_push(key=XCOM_EMBED_URL, value=embed_url)
            record_pushed_embed_url(self, embed_url)
        return {"embed_id": embed_id, "embed_url": embed_url}

    def _execute_bulk(self, context: Context, hook: JobMojitoHook) -> list[dict[str, Any]]:
        """Change every position of ``position_ids``; push per-id results even when some fail."""
        try:
            if isinstance(self.position_ids, str):
                raise ValueError(
                    "position_ids rendered to one string, not a list: Jinja renders to text, so pass "
                    "an upstream task's output, or set render_template_as_native_obj=True on the DAG."
                )
            changes = build_changes(self.position_ids or (), *self._rendered_status_and_embedding())
        except ValueError as exc:
            raise _permanent(self.task_id, exc) from exc
        try:
            results = hook.apply_many(changes, max_workers=self.max_workers)
        except JobMojitoBulkError as error:
            self._push_bulk_results(context, hook, error.results, changes)
            raise
        return self._push_bulk_results(context, hook, results, changes)

    def _push_bulk_results(
        self,
        context: Context,
        hook: JobMojitoHook,
        results: Sequence[StateChangeResult],
        changes: Sequence[StateChange],
    ) -> list[dict[str, Any]]:
        """Push ``results`` (and embed keys by id) to XCom; log each change; return the summary."""
        ti = context["ti"]
        summary: list[dict[str, Any]] = []
        embed_ids: dict[str, str] = {}
        signing_keys: dict[str, str] = {}
        for result, change in zip(results, changes, strict=True):
            entry: dict[str, Any] = {"position_id": result.position_id, "ok": result.ok}
            if result.ok and result.response is not None:
                embed_id = result.response.get("embed_id")
                if isinstance(embed_id, str):
                    embed_ids[result.position_id] = embed_id
                    signing_keys[result.position_id] = result.response["embed_signing_key"]
                    entry.update(embed_id=embed_id, embed_url=hook.embed_url(embed_id))
                self.log.info("%s", change.describe())
            else:
                entry["error"] = str(result.error)
            summary.append(entry)
        if not self.do_xcom_push:
            return summary
        if embed_ids:
            ti.xcom_push(key=XCOM_EMBED_IDS, value=embed_ids)
            if self.push_signing_key:
                ti.xcom_push(key=XCOM_EMBED_SIGNING_KEYS, value=signing_keys)
            ti.xcom_push(key=XCOM_EMBED_URLS, value={pid: hook.embed_url(e) for pid, e in embed_ids.items()})
        ti.xcom_push(key=XCOM_RESULTS, value=summary)
        return summary


def _check_position_ids(value: object) -> None:
    if isinstance(value, str):
        raise ValueError(f"position_ids must be a list of UUIDs, not one string; got {value!r}.")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if is_literal(item):
                parse_position_id(item, param=f"position_ids[{index}]")


def _check_push_signing_key(value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"push_signing_key must be True or False; got {value!r}.")


#: The check of each argument whose literal value can be known when the DAG is parsed.
_LITERAL_CHECKS: dict[str, Callable[[Any], object]] = {
    "position_id": parse_position_id,
    "position_ids": _check_position_ids,
    "status": InterviewStatus.parse,
    # A "true"/"false" string counts, as when rendered: expand() may hand one from an upstream task.
    "is_embedded": lambda value: parse_is_embedded(_rendered_bool(value)),
    "max_workers": check_max_workers,
    "push_signing_key": _check_push_signing_key,
    "hook_params": check_hook_params,
}


def _check_literal_values(arguments: Mapping[str, Any]) -> None:
    """Raise :class:`JobMojitoArgumentError` (a ``ValueError``) naming the first given, literal
    (not templated) argument that is bad."""
    check_literal_arguments(arguments, _LITERAL_CHECKS)


def _permanent(task_id: str, exc: ValueError) -> JobMojitoArgumentError:
    """Rendered input that is wrong stays wrong: no Airflow retry can fix it."""
    return JobMojitoArgumentError(f"Task {task_id!r}: {exc}")


class EmbedOperator(SetInterviewStateOperator):
    """Switch iframe embedding of a JobMojito position on (or off), and hand the keys to XCom.

    Pushes ``embed_id``, ``embed_signing_key`` (unless ``push_signing_key=False``) and
    ``embed_url``; returns ``{"position_id", "is_embedded", "embed_id", "embed_url"}``. Switched off,
    it pushes nothing and the API deletes the keys.

    Give ``position_id`` for one position, or ``position_ids`` for many, as to
    :class:`SetInterviewStateOperator`: a bulk task pushes ``embed_ids``, ``embed_signing_keys``
    and ``embed_urls``, each a dict by position id.

    :param position_id: the interview or position id (a UUID). Templated.
    :param position_ids: instead of ``position_id``, a list of ids, each at most once. Templated.
    :param is_embedded: ``True`` (default) to switch embedding on, ``False`` to switch it off. Templated.
    :param push_signing_key: push ``embed_signing_key`` to XCom.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.

    ``status`` is taken (and templated) as by :class:`SetInterviewStateOperator`, to set the
    lifecycle status in the same call.
    """

    def __init__(
        self,
        *,
        position_id: str | None = None,
        position_ids: Sequence[str] | None = None,
        is_embedded: bool | str = True,
        push_signing_key: bool = True,
        jobmojito_conn_id: str = "jobmojito_default",
        map_index_template: str | None = MAP_INDEX_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        # Exactly one of the two is checked by the parent, with the same message.
        super().__init__(
            position_id=position_id,
            position_ids=position_ids,
            is_embedded=is_embedded,
            push_signing_key=push_signing_key,
            jobmojito_conn_id=jobmojito_conn_id,
            map_index_template=map_index_template,
            **kwargs,
        )
