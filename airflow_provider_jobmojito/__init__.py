"""Apache Airflow provider for JobMojito, the AI interview platform."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_jobmojito.connection import DEFAULT_API_URL

__version__ = "1.3.0"

#: Where the documentation (docs/) is published; pyproject.toml's Documentation URL says the same.
DOCUMENTATION_URL = "https://airflow-provider-jobmojito.readthedocs.io/"

__all__ = ["DEFAULT_API_URL", "DOCUMENTATION_URL", "__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

    The connection form is given here (``conn-fields`` and ``ui-field-behaviour``) so that the
    API server builds it without importing the hook (Airflow 3.2 and later). Airflow 2.11 to 3.1
    build it from the hook's ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()``.
    Both are derived from the one declaration of the extras in
    :mod:`airflow_provider_jobmojito.connection`.
    """
    # Imported here, not with the package: pytest imports the package in every session for the
    # sandbox's plugin, and token_cache brings pendulum (see sandbox/pytest_plugin.py).
    from airflow_provider_jobmojito import connection, token_cache

    return {
        "package-name": "airflow-provider-jobmojito",
        "name": "JobMojito",
        "description": "Open, archive and embed JobMojito AI interview positions from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "JobMojito",
                "external-doc-url": DOCUMENTATION_URL,
                # Airflow's convention for provider docs: /docs/<package>/<page>, here docs/<page>.
                "how-to-guide": [
                    f"/docs/airflow-provider-jobmojito/{page}"
                    for page in (
                        "connection.md",
                        "operators.md",
                        "waiting.md",
                        "bulk.md",
                        "positions-as-code.md",
                        "results.md",
                    )
                ],
                "tags": ["service"],
                # Airflow's convention for provider logos: /docs/integration-logos/<file>, here in
                # docs/integration-logos/.
                "logo": "/docs/integration-logos/JobMojito.svg",
            }
        ],
        "hooks": [
            {
                "integration-name": "JobMojito",
                "python-modules": ["airflow_provider_jobmojito.hooks.jobmojito"],
            }
        ],
        "operators": [
            {
                "integration-name": "JobMojito",
                "python-modules": [
                    "airflow_provider_jobmojito.operators.jobmojito",
                    "airflow_provider_jobmojito.operators.positions_as_code",
                    "airflow_provider_jobmojito.operators.results",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "JobMojito",
                "python-modules": ["airflow_provider_jobmojito.sensors.jobmojito"],
            }
        ],
        "triggers": [
            {
                "integration-name": "JobMojito",
                "python-modules": [
                    "airflow_provider_jobmojito.triggers.jobmojito",
                    "airflow_provider_jobmojito.triggers.results",
                ],
            }
        ],
        "extra-links": ["airflow_provider_jobmojito.links.jobmojito.EmbeddedInterviewLink"],
        "connection-types": [
            {
                "connection-type": "jobmojito",
                "hook-class-name": "airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook",
                "hook-name": "JobMojito",
                # A copy: whoever reads the provider info may change it without changing ours.
                "ui-field-behaviour": copy.deepcopy(connection.UI_FIELD_BEHAVIOUR),
                "conn-fields": connection.conn_fields(),
            }
        ],
        "config": {"jobmojito": copy.deepcopy(token_cache.CONFIG_SECTION)},
    }


def __getattr__(name: str) -> Any:
    # DEFAULT_API_URL, on first use (PEP 562): see get_provider_info for why not at import.
    if name == "DEFAULT_API_URL":
        from airflow_provider_jobmojito.connection import DEFAULT_API_URL

        return DEFAULT_API_URL
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
