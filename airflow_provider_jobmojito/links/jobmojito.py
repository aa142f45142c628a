"""The operators' extra link: "Embedded interview", the iframe URL of the position the task embedded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_jobmojito.xcom import XCOM_EMBED_URL

#: An argument the operator (as the caller holds it) does not have.
_UNKNOWN = object()

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey


class EmbeddedInterviewLink(BaseOperatorLink):
    """The ``embed_url`` the task pushed to XCom: one position whose embedding it switched on.

    Empty (no link) when the task pushed no ``embed_url``: it switched embedding off, changed the
    status only, ran with ``do_xcom_push=False``, failed before the API answered, or changed many
    positions (``position_ids``), whose URLs are in the ``embed_urls`` XCom, a dict by position id.

    Airflow 3 calls :meth:`get_link` in the worker when the task ends and stores the URL in XCom
    under :attr:`xcom_key`, where the API server reads it; Airflow 2's web server calls it when the
    task is viewed, which is why the class is registered under ``extra-links`` in the provider info.
    """

    name = "Embedded interview"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if _pushes_no_url(operator):
            # Not asked: on Airflow 3 a missing XCom is logged at ERROR ("XCom not found") in the
            # task's log, which every bulk or status-only task then showed.
            return ""
        # Imported here: XCom's import is the Task SDK's on Airflow 3 and the ORM's on Airflow 2,
        # and the operators module (which imports this one) stays light to parse.
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(ti_key=ti_key, key=XCOM_EMBED_URL)
        return url if isinstance(url, str) else ""


def _pushes_no_url(operator: object) -> bool:
    """Whether the task's own arguments say it pushed no ``embed_url``: XCom off, many positions
    (``position_ids``), or embedding not switched on (``is_embedded`` ``False`` or ``None``, as
    given or as rendered). Anything it cannot tell (an argument the operator lacks, as a
    deserialized one may, or one still a template) counts as "may have pushed one"."""
    if getattr(operator, "do_xcom_push", True) is False:
        return True
    if getattr(operator, "position_ids", None) is not None:
        return True  # a bulk task: its URLs are in embed_urls, by position
    is_embedded = getattr(operator, "is_embedded", _UNKNOWN)
    if isinstance(is_embedded, str):
        # Rendered: Jinja gives "False" or "None" for those values.
        return is_embedded.strip().lower() in ("false", "none", "")
    return is_embedded is None or is_embedded is False
