"""The provider registers with Airflow: its info validates and the CLI lists it."""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from airflow_provider_jobmojito import __version__, get_provider_info
from airflow_provider_jobmojito.settings import EXTRAS

HOOK = "airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook"


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


def test_providers_manager_loads_the_hook_and_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert ProvidersManagerTaskRuntime().hooks["jobmojito"].hook_class_name == HOOK
    manager = ProvidersManager()
    assert manager.field_behaviours["jobmojito"]["relabeling"]["password"] == "Access token or password"
    widgets = manager.connection_form_widgets
    assert widgets["extra__jobmojito__supabase_anon_key"].is_sensitive
    assert not widgets["extra__jobmojito__timeout"].is_sensitive


@pytest.fixture(scope="module")
def airflow_cli() -> list[str]:
    return [str(Path(sys.executable).with_name("airflow"))]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["providers", "list"], "airflow-provider-jobmojito"),
        (["providers", "hooks"], HOOK),
        (["providers", "widgets"], "extra__jobmojito__supabase_anon_key"),
    ],
)
def test_airflow_cli_shows_the_provider(airflow_cli: list[str], command: list[str], expected: str) -> None:
    result = subprocess.run(
        [*airflow_cli, *command, "--output", "plain"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
