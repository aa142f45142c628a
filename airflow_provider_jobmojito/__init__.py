"""Apache Airflow provider for JobMojito, the AI interview platform."""

from __future__ import annotations

import copy
from typing import Any

__version__ = "1.0.0"

DEFAULT_API_URL = "https://cool.jobmojito.com/functions/v1"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

    The connection form is given here (``conn-fields`` and ``ui-field-behaviour``) so that the
    API server builds it without importing the hook (Airflow 3.2 and later). Airflow 2.11 to 3.1
    build it from the hook's ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()``.
    Both are derived from the one declaration of the extras in
    :mod:`airflow_provider_jobmojito.connection`.
    """
    # Imported here: the module needs this package's DEFAULT_API_URL, and stays unloaded until
    # Airflow asks. Like this package, it imports nothing from Airflow.
    from airflow_provider_jobmojito import connection

    return {
        "package-name": "airflow-provider-jobmojito",
        "name": "JobMojito",
        "description": "Open, archive and embed JobMojito AI interview positions from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "JobMojito",
                "external-doc-url": "https://developer.jobmojito.com/",
                "tags": ["service"],
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
                "python-modules": ["airflow_provider_jobmojito.operators.jobmojito"],
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
                "python-modules": ["airflow_provider_jobmojito.triggers.jobmojito"],
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
    }


def __getattr__(name: str) -> Any:
    """Transitional, until the hook's legacy form classmethods call
    ``connection.form_widgets()`` and ``connection.ui_field_behaviour()``: they still import
    ``_CONN_FIELDS`` and ``_UI_FIELD_BEHAVIOUR`` from here. Remove this function then.

    :param name: the attribute not found in this module.
    """
    if name not in ("_CONN_FIELDS", "_UI_FIELD_BEHAVIOUR"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from airflow_provider_jobmojito import connection

    return connection.conn_fields() if name == "_CONN_FIELDS" else connection.UI_FIELD_BEHAVIOUR
