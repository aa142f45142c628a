"""Apache Airflow provider for JobMojito, the AI interview platform."""

from __future__ import annotations

from typing import Any

__version__ = "1.0.0"

DEFAULT_API_URL = "https://cool.jobmojito.com/functions/v1"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

    The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``) so that the
    API server builds it without importing the hook (Airflow 3.2 and later). Airflow 2.11 to 3.1
    build it from the hook's ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()``,
    which derive it from the same two constants below.
    """
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
                "ui-field-behaviour": _UI_FIELD_BEHAVIOUR,
                "conn-fields": _CONN_FIELDS,
            }
        ],
    }


#: The connection form's standard fields: hidden, relabelled, with placeholders.
_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {
        "host": "API base URL",
        "login": "Sign-in e-mail",
        "password": "Access token or password",
    },
    "placeholders": {
        "host": DEFAULT_API_URL,
        "login": "Leave empty to use an access token",
        "password": "Access token (JWT), or the password of the sign-in e-mail",
        "extra": '{"timeout": 30, "max_retries": 5}',
    },
}

#: The connection form's extra fields, one per extra the hook reads (conn.extra_dejson[name]).
_CONN_FIELDS: dict[str, Any] = {
    "timeout": {
        "label": "Timeout (s)",
        "description": "Seconds to wait for each attempt of an HTTP call (default 30).",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries of connection errors, timeouts, 408, 429, 502, 503 and 504 (default 5).",
        "schema": {"type": ["integer", "null"], "minimum": 0},
    },
    "backoff_factor": {
        "label": "Backoff factor (s)",
        "description": "Base of the exponential backoff between retries, with full jitter (default 0.5).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "backoff_max": {
        "label": "Backoff max (s)",
        "description": "Longest wait between retries; a longer Retry-After ends the retries (default 30).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "supabase_url": {
        "label": "Supabase URL",
        "description": "Sign-in mode only: the Supabase project URL (default: the API host's origin).",
        "schema": {"type": ["string", "null"]},
    },
    "supabase_anon_key": {
        "label": "Supabase anon key",
        "description": "Sign-in mode only: sent as the apikey header when set.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "embed_base_url": {
        "label": "Embed base URL",
        "description": "Base of the iframe URL built from an embed_id "
        "(default https://try.interviewmojito.com/embed).",
        "schema": {"type": ["string", "null"]},
    },
}
