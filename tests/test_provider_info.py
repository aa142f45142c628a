"""The provider registers with Airflow: its info validates and the CLI lists it."""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from airflow_provider_jobmojito import __version__, get_provider_info
from airflow_provider_jobmojito.connection import EXTRAS
from airflow_provider_jobmojito.token_cache import CONFIG_SECTION
from tests.conftest import AIRFLOW_V3, AIRFLOW_VERSION

HOOK = "airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook"
LINK = "airflow_provider_jobmojito.links.jobmojito.EmbeddedInterviewLink"

#: Airflow 2.11 to 3.1 build the connection form from the hook's classmethods, which need wtforms
#: and flask_appbuilder (Airflow 2 always has them; Airflow 3 with apache-airflow-providers-fab).
#: Airflow 3.2 and later read conn-fields and ui-field-behaviour from the provider info instead.
FORM_FROM_CLASSMETHODS = AIRFLOW_VERSION.release < (3, 2)
FAB_INSTALLED = all(importlib.util.find_spec(name) for name in ("wtforms", "flask_appbuilder"))
needs_a_form = pytest.mark.skipif(
    FORM_FROM_CLASSMETHODS and not FAB_INSTALLED,
    reason=f"Airflow {AIRFLOW_VERSION} builds the connection form from the hook's classmethods, "
    "which need wtforms and flask_appbuilder (apache-airflow-providers-fab): not installed here",
)


def _hooks_by_connection_type() -> Any:
    """Where Airflow looks a connection type's hook up (the Task SDK has its own manager on 3.3)."""
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:  # Airflow 2.11 and 3.0
        from airflow.providers_manager import ProvidersManager

        return ProvidersManager().hooks
    return ProvidersManagerTaskRuntime().hooks


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((importlib.resources.files("airflow") / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_and_version_match_the_distribution() -> None:
    from importlib.metadata import version

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-jobmojito"
    assert info["versions"] == [__version__] == [version("airflow-provider-jobmojito")]


def test_every_extra_the_hook_reads_is_a_form_field_and_secrets_are_passwords() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    assert set(fields) == set(EXTRAS)
    assert fields["supabase_anon_key"]["schema"]["format"] == "password"
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["placeholders"]["host"] == "https://cool.jobmojito.com/functions/v1"
    assert set(behaviour["relabeling"]) == {"host", "login", "password"}
    assert set(behaviour["hidden-fields"]) == {"schema", "port"}


def test_providers_manager_loads_the_hook() -> None:
    assert _hooks_by_connection_type()["jobmojito"].hook_class_name == HOOK


def test_providers_manager_registers_the_extra_link() -> None:
    """Airflow 2's web server rebuilds a task's links only from registered classes."""
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_jobmojito.operators.jobmojito import EmbedOperator

    assert get_provider_info()["extra-links"] == [LINK]
    assert LINK in ProvidersManager().extra_links_class_names
    module, _, name = LINK.rpartition(".")
    assert [type(link) for link in EmbedOperator.operator_extra_links] == [
        getattr(importlib.import_module(module), name)
    ]


@needs_a_form
def test_providers_manager_loads_the_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.field_behaviours["jobmojito"]["relabeling"]["password"] == "Access token or password"
    widgets = manager.connection_form_widgets
    assert widgets["extra__jobmojito__supabase_anon_key"].is_sensitive
    assert not widgets["extra__jobmojito__timeout"].is_sensitive
    assert {name for name in widgets if name.startswith("extra__jobmojito__")} == {
        f"extra__jobmojito__{name}" for name in EXTRAS
    }


@pytest.mark.skipif(
    not FAB_INSTALLED,
    reason="wtforms and flask_appbuilder are not installed: Airflow 3.2 and later read the form from "
    "the provider info and never call these classmethods",
)
def test_the_legacy_form_classmethods_mirror_the_provider_info() -> None:
    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

    (conn_type,) = get_provider_info()["connection-types"]
    widgets = JobMojitoHook.get_connection_form_widgets()
    assert list(widgets) == list(conn_type["conn-fields"])
    for name, field in conn_type["conn-fields"].items():
        assert widgets[name].args[0] == field["label"]
        assert widgets[name].kwargs["description"] == field["description"]
    kinds = {name: widget.field_class.__name__ for name, widget in widgets.items()}
    assert kinds["supabase_anon_key"] == "PasswordField"
    assert kinds["max_retries"] == "IntegerField"
    assert kinds["timeout"] == kinds["supabase_url"] == "StringField"
    behaviour = JobMojitoHook.get_ui_field_behaviour()
    assert behaviour == {
        key.replace("-", "_"): value for key, value in conn_type["ui-field-behaviour"].items()
    }


@pytest.mark.skipif(
    not AIRFLOW_V3, reason="Airflow 2's UI is the FAB web server: ProvidersManager gives its form"
)
@needs_a_form
def test_the_ui_gets_the_connection_form() -> None:
    """What the API server sends the UI's Add Connection form (``/ui/connections/hook_meta``)."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "jobmojito"]
    assert meta.standard_fields.host.title == "API base URL"
    assert meta.standard_fields.password.title == "Access token or password"
    assert meta.standard_fields.port.hidden
    assert set(meta.extra_fields) == set(EXTRAS)
    assert meta.extra_fields["supabase_anon_key"]["schema"]["format"] == "password"
    assert meta.extra_fields["timeout"]["schema"]["title"] == "Timeout (s)"


@pytest.fixture(scope="module")
def airflow_cli() -> list[str]:
    return [str(Path(sys.executable).with_name("airflow"))]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # The package's line, with the installed version: the provider is registered, not a leftover.
        (["providers", "list"], rf"airflow-provider-jobmojito .* {re.escape(__version__)}(\s|$)"),
        (["providers", "hooks"], re.escape(HOOK)),
        (["providers", "links"], re.escape(LINK)),
        pytest.param(["providers", "widgets"], "extra__jobmojito__supabase_anon_key", marks=needs_a_form),
    ],
)
def test_airflow_cli_shows_the_provider(airflow_cli: list[str], command: list[str], expected: str) -> None:
    result = subprocess.run(
        [*airflow_cli, *command, "--output", "plain"],
        capture_output=True,
        text=True,
        timeout=120,
        # Shown, a deprecation of the legacy form classmethods (Airflow 3.2+) would name the hook.
        env={**os.environ, "PYTHONWARNINGS": "always::DeprecationWarning"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(expected, result.stdout, re.MULTILINE), result.stdout[-2000:]
    assert "JobMojitoHook' defines" not in result.stdout + result.stderr


def _run_airflow(airflow_cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*airflow_cli, *args], capture_output=True, text=True, timeout=120, check=False, env=os.environ
    )


def test_airflow_config_list_shows_the_jobmojito_options_with_their_descriptions(
    airflow_cli: list[str],
) -> None:
    result = _run_airflow(airflow_cli, "config", "list", "--section", "jobmojito", "--include-descriptions")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[jobmojito]" in result.stdout
    for name, option in CONFIG_SECTION["options"].items():
        assert re.search(rf"^#? ?{name} = ", result.stdout, re.MULTILINE), result.stdout
        for line in option["description"].splitlines():
            assert f"# {line}" in result.stdout


def test_airflow_config_get_value_knows_token_cache_and_gives_the_default(airflow_cli: list[str]) -> None:
    """Undeclared, the option was answered with a warning that [jobmojito/token_cache] is unknown."""
    result = _run_airflow(airflow_cli, "config", "get-value", "jobmojito", "token_cache")
    assert result.returncode == 0, result.stderr[-2000:]
    # The last line: in unit-test mode Airflow 3 logs a line to stdout first.
    assert result.stdout.splitlines()[-1] == CONFIG_SECTION["options"]["token_cache"]["default"] == "host"
    assert "not found" not in result.stdout + result.stderr
