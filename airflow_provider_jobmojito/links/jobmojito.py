"""The operators' extra link: "Embedded interview", the iframe URL of the position the task embedded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_jobmojito.xcom import XCOM_EMBED_URL

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: Where a running task records the ``embed_url`` it pushed ("" for none): an attribute of the
#: operator object that runs, set by :func:`record_pushed_embed_url`, never serialized.
_PUSHED_EMBED_URL = "_jobmojito_pushed_embed_url"


def record_pushed_embed_url(operator: object, url: str) -> None:
    """Record on the running ``operator`` the ``embed_url`` it pushed to XCom, or ``""`` for none.

    The operators call it with ``""`` when they start executing, then with the URL once it is
    pushed, so the link asked about this very object knows the answer without asking XCom.
    """
    setattr(operator, _PUSHED_EMBED_URL, url)


class EmbeddedInterviewLink(BaseOperatorLink):
    """The ``embed_url`` the task pushed to XCom: one position whose embedding it switched on.

    Empty (no link) when the task pushed no ``embed_url``: it switched embedding off, changed the
    status only, ran with ``do_xcom_push=False``, failed before the API answered, or changed many
    positions (``position_ids``), whose URLs are in the ``embed_urls`` XCom, a dict by position id.

    Airflow 3 calls :meth:`get_link` in the worker when the task ends, on the operator that ran,
    and stores the URL in XCom under :attr:`xcom_key`, where the API server reads it; Airflow 2's
    web server calls it when the task is viewed, on the operator deserialized from the DAG, which
    is why the class is registered under ``extra-links`` in the provider info.
    """

    name = "Embedded interview"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        pushed = getattr(operator, _PUSHED_EMBED_URL, None)
        if isinstance(pushed, str):
            # The operator that ran (Airflow 3 asks at the task's end): it recorded what it pushed.
            # Asking XCom for a key never pushed would log "XCom not found" at ERROR (the Task
            # SDK's API client logs every 404 so) in the log of every task without an embed URL.
            return pushed
        # Any other operator object (the web server's, or one read from the DAG in another task)
        # knows nothing of the run: XCom does. Imported here: XCom's import is the Task SDK's on
        # Airflow 3 and the ORM's on Airflow 2, and the operators module (which imports this one)
        # stays light to parse.
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(ti_key=ti_key, key=XCOM_EMBED_URL)
        return url if isinstance(url, str) else ""
