"""The XCom keys the operators push, and the extra link reads.

A module of their own, below both :mod:`.operators.jobmojito` (which pushes them, and imports the
link) and :mod:`.links.jobmojito` (which reads one), so neither imports the other for them. The
operators module re-exports them: ``from airflow_provider_jobmojito.operators.jobmojito import
XCOM_EMBED_URL`` is how 1.0.0 documented them.
"""

from __future__ import annotations

#: XCom keys pushed when the API returns embed keys.
XCOM_EMBED_ID = "embed_id"
XCOM_EMBED_SIGNING_KEY = "embed_signing_key"
XCOM_EMBED_URL = "embed_url"
#: XCom keys pushed by a bulk task (``position_ids``): dicts by position id, and every result.
XCOM_EMBED_IDS = "embed_ids"
XCOM_EMBED_SIGNING_KEYS = "embed_signing_keys"
XCOM_EMBED_URLS = "embed_urls"
XCOM_RESULTS = "results"
