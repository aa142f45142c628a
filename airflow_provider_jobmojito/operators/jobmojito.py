"""Operators that change JobMojito interview positions: lifecycle status and iframe embedding."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import StateChange, parse_is_embedded, parse_position_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

#: XCom keys pushed when the API returns embed keys.
XCOM_EMBED_ID = "embed_id"
XCOM_EMBED_SIGNING_KEY = "embed_signing_key"
XCOM_EMBED_URL = "embed_url"

#: Mapped instances are labelled by the position they change.
MAP_INDEX_TEMPLATE = "{{ task.position_id }}"

_PLAIN_VALUES = (str, bool, int, float, uuid.UUID, list, tuple, dict, type(None))


def _is_literal(value: object) -> bool:
    """Whether ``value`` is known at DAG parse time (no Jinja, no upstream output)."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return isinstance(value, _PLAIN_VALUES)


def _rendered_bool(value: object) -> object:
    """Read a rendered ``"True"``/``"false"`` back as a bool: Jinja renders to strings."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


class SetInterviewStateOperator(BaseOperator):
    """Set a JobMojito position's lifecycle status and/or its iframe embedding, in one call.

    Literal arguments are checked when the operator is built, so a DAG with ``status="actve"``
    fails to import; templated ones are checked after rendering, before any request. Nothing
    touches the network until the task runs.

    When the API returns embed keys (``is_embedded=True``), the task pushes the XCom keys
    ``embed_id``, ``embed_signing_key`` (unless ``push_signing_key=False``) and ``embed_url``. The
    return value never holds the signing key.

    Mapped instances (``.partial(...).expand(position_id=[...])``) are labelled by position id.

    :param position_id: the interview or position id (a UUID). Templated.
    :param status: one of ``draft, active, archived, deleted, preparing, completed``, or ``None``
        to leave the status as it is. Templated.
    :param is_embedded: ``True`` switches embedding on (the existing key is kept), ``False`` off
        (the key is deleted), ``None`` leaves it. Templated; a rendered ``"true"``/``"false"``
        counts as the bool.
    :param push_signing_key: push ``embed_signing_key`` to XCom when the API returns it. Anyone who
        can read this task's XComs can read it: see the README's XCom section.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.
    """

    template_fields: Sequence[str] = ("position_id", "status", "is_embedded", "jobmojito_conn_id")
    ui_color = "#e9f5ff"

    def __init__(
        self,
        *,
        position_id: str,
        status: InterviewStatus | str | None = None,
        is_embedded: bool | str | None = None,
        push_signing_key: bool = True,
        jobmojito_conn_id: str = "jobmojito_default",
        map_index_template: str | None = MAP_INDEX_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        # A default in this signature (not set in the body) is what partial() picks up for
        # mapped tasks too: Airflow reads operator defaults from the __init__ signatures.
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.position_id = position_id
        self.status = status
        self.is_embedded = is_embedded
        self.push_signing_key = push_signing_key
        self.jobmojito_conn_id = jobmojito_conn_id
        self._check_literals()

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """Start a mapped task; its instances are labelled by position id unless told otherwise.

        Airflow 3 takes the label's default from ``__init__``; Airflow 2's ``partial()`` passes
        ``map_index_template=None`` instead, so the default is given here too.
        """
        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        return super().partial(**kwargs)

    def _check_literals(self) -> None:
        """Fail DAG import on a literal argument that can never work."""
        if _is_literal(self.position_id):
            parse_position_id(self.position_id)
        if _is_literal(self.status) and self.status is not None:
            InterviewStatus.parse(self.status)
        if _is_literal(self.is_embedded):
            parse_is_embedded(self.is_embedded)
        if self.status is None and self.is_embedded is None:
            raise ValueError(
                f"{type(self).__name__} {self.task_id!r}: give status (one of "
                f"{InterviewStatus.allowed()}) or is_embedded (True or False), or both; got neither."
            )
        if not isinstance(self.push_signing_key, bool):
            raise ValueError(f"push_signing_key must be True or False; got {self.push_signing_key!r}.")

    def _rendered_change(self) -> StateChange:
        try:
            return StateChange.build(self.position_id, self.status, _rendered_bool(self.is_embedded))
        except ValueError as exc:
            # Rendered input that is wrong stays wrong: no Airflow retry can fix it.
            raise AirflowFailException(f"Task {self.task_id!r}: {exc}") from exc

    def execute(self, context: Context) -> dict[str, Any]:
        change = self._rendered_change()
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        hook = JobMojitoHook(self.jobmojito_conn_id)
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

    def _push_embed_keys(
        self, context: Context, hook: JobMojitoHook, answer: dict[str, Any]
    ) -> dict[str, str]:
        """Push the embed keys first, so a later failure cannot lose a key the API just made."""
        embed_id = answer.get("embed_id")
        if not isinstance(embed_id, str):
            return {}
        embed_url = hook.embed_url(embed_id)
        ti = context["ti"]
        ti.xcom_push(key=XCOM_EMBED_ID, value=embed_id)
        if self.push_signing_key:
            ti.xcom_push(key=XCOM_EMBED_SIGNING_KEY, value=answer["embed_signing_key"])
        ti.xcom_push(key=XCOM_EMBED_URL, value=embed_url)
        return {"embed_id": embed_id, "embed_url": embed_url}


class EmbedOperator(SetInterviewStateOperator):
    """Switch iframe embedding of a JobMojito position on (or off), and hand the keys to XCom.

    Pushes ``embed_id``, ``embed_signing_key`` (unless ``push_signing_key=False``) and
    ``embed_url``; returns ``{"position_id", "is_embedded", "embed_id", "embed_url"}``. Switched off,
    it pushes nothing and the API deletes the keys.

    :param position_id: the interview or position id (a UUID). Templated.
    :param is_embedded: ``True`` (default) to switch embedding on, ``False`` to switch it off. Templated.
    :param push_signing_key: push ``embed_signing_key`` to XCom.
    :param jobmojito_conn_id: the Airflow connection to use. Templated.
    """

    template_fields: Sequence[str] = ("position_id", "is_embedded", "jobmojito_conn_id")

    def __init__(
        self,
        *,
        position_id: str,
        is_embedded: bool | str = True,
        push_signing_key: bool = True,
        jobmojito_conn_id: str = "jobmojito_default",
        map_index_template: str | None = MAP_INDEX_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            position_id=position_id,
            is_embedded=is_embedded,
            push_signing_key=push_signing_key,
            jobmojito_conn_id=jobmojito_conn_id,
            map_index_template=map_index_template,
            **kwargs,
        )
