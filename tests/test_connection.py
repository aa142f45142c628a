"""The connection's extras: declared once, and the form, the docs and the parsing derived from it."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jobmojito import connection, get_provider_info
from airflow_provider_jobmojito.connection import (
    EXTRAS,
    MAX_RETRIES,
    MAX_SECONDS,
    UI_FIELD_BEHAVIOUR,
    check_overrides,
    conn_fields,
    form_widgets,
    markdown_table,
    param_docs,
    ui_field_behaviour,
)
from airflow_provider_jobmojito.exceptions import JobMojitoConfigError

#: Where the package under test lives: subprocesses must import this copy, not another install.
SOURCE_ROOT = Path(connection.__file__).resolve().parents[1]

#: The form's extra fields, as Airflow 3.2 and later read them from the provider info.
FORM_FIELDS: dict[str, dict[str, Any]] = {
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

#: What the hook uses when an extra is unset (None for supabase_url: the API host's origin).
DEFAULTS: dict[str, Any] = {
    "timeout": 30,
    "max_retries": 5,
    "backoff_factor": 0.5,
    "backoff_max": 30,
    "supabase_url": None,
    "supabase_anon_key": None,
    "embed_base_url": "https://try.interviewmojito.com/embed",
}


def test_the_extras_are_these_seven_in_the_forms_order() -> None:
    assert list(EXTRAS) == list(FORM_FIELDS)
    assert all(name == extra.name for name, extra in EXTRAS.items())


def test_the_declaration_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        EXTRAS["timout"] = EXTRAS["timeout"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        EXTRAS["timeout"].default = 60  # type: ignore[misc]


class TestTheFormOnAirflow32AndLater:
    """The provider info's ``conn-fields`` and ``ui-field-behaviour``."""

    @pytest.mark.parametrize(("name", "field"), FORM_FIELDS.items(), ids=list(FORM_FIELDS))
    def test_each_extra_is_a_form_field(self, name: str, field: dict[str, Any]) -> None:
        assert conn_fields()[name] == field

    def test_only_the_anon_key_is_a_secret(self) -> None:
        assert [name for name, extra in EXTRAS.items() if extra.secret] == ["supabase_anon_key"]

    def test_the_standard_fields_are_hidden_relabelled_and_explained(self) -> None:
        assert UI_FIELD_BEHAVIOUR == {
            "hidden-fields": ["schema", "port"],
            "relabeling": {
                "host": "API base URL",
                "login": "Sign-in e-mail",
                "password": "Access token or password",
            },
            "placeholders": {
                "host": "https://cool.jobmojito.com/functions/v1",
                "login": "Leave empty to use an access token",
                "password": "Access token (JWT), or the password of the sign-in e-mail",
                "extra": '{"timeout": 30, "max_retries": 5}',
            },
        }

    def test_the_extra_fields_placeholder_shows_defaults_that_parse_to_themselves(self) -> None:
        example = json.loads(UI_FIELD_BEHAVIOUR["placeholders"]["extra"])
        assert example == {name: DEFAULTS[name] for name in example}
        assert all(EXTRAS[name].read(value) == value for name, value in example.items())

    def test_the_provider_info_gives_copies_of_the_declared_form(self) -> None:
        (conn_type,) = get_provider_info()["connection-types"]
        assert conn_type["conn-fields"] == conn_fields()
        assert conn_type["ui-field-behaviour"] == UI_FIELD_BEHAVIOUR
        conn_type["conn-fields"]["timeout"]["label"] = "changed"
        conn_type["ui-field-behaviour"]["hidden-fields"].append("login")
        assert conn_fields()["timeout"]["label"] == "Timeout (s)"
        assert UI_FIELD_BEHAVIOUR["hidden-fields"] == ["schema", "port"]


class TestTheFormOnAirflow211To31:
    """What the hook's ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()`` return."""

    def test_ui_field_behaviour_spells_the_keys_in_snake_case_and_is_a_copy(self) -> None:
        behaviour = ui_field_behaviour()
        assert behaviour == {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }
        behaviour["hidden_fields"].append("login")
        assert UI_FIELD_BEHAVIOUR["hidden-fields"] == ["schema", "port"]

    def test_the_widgets_are_the_form_fields_as_wtforms_fields(self) -> None:
        # Only Airflow 2.11 to 3.1 with FAB have both; Airflow 3.2 and later never build this form.
        pytest.importorskip("wtforms")
        pytest.importorskip("flask_appbuilder")

        widgets = form_widgets()
        assert list(widgets) == list(FORM_FIELDS)
        for name, field in FORM_FIELDS.items():
            assert widgets[name].args[0] == field["label"]
            assert widgets[name].kwargs["description"] == field["description"]
        kinds = {name: widget.field_class.__name__ for name, widget in widgets.items()}
        assert kinds == {
            "timeout": "StringField",  # Airflow 2's form allows no FloatField: the hook casts the text
            "max_retries": "IntegerField",
            "backoff_factor": "StringField",
            "backoff_max": "StringField",
            "supabase_url": "StringField",
            "supabase_anon_key": "PasswordField",
            "embed_base_url": "StringField",
        }
        (_, at_least_zero) = widgets["max_retries"].kwargs["validators"]
        assert (at_least_zero.min, at_least_zero.max) == (0, None)

    def test_without_wtforms_building_the_widgets_says_what_is_missing(self) -> None:
        if all(_importable(name) for name in ("wtforms", "flask_appbuilder")):
            pytest.skip("wtforms and flask_appbuilder are installed here")
        with pytest.raises(ImportError):
            form_widgets()


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class TestReading:
    """Each extra's raw value (a JSON value, or a string from a URI connection) becomes a setting."""

    @pytest.mark.parametrize(("name", "default"), DEFAULTS.items(), ids=list(DEFAULTS))
    def test_an_unset_extra_is_its_default(self, name: str, default: Any) -> None:
        assert EXTRAS[name].read(None) == default

    @pytest.mark.parametrize(
        ("name", "raw", "setting"),
        [
            ("timeout", 12, 12.0),
            ("timeout", " 12.5 ", 12.5),
            ("timeout", MAX_SECONDS, float(MAX_SECONDS)),
            ("max_retries", 0, 0),
            ("max_retries", " 3\n", 3),
            ("max_retries", MAX_RETRIES, MAX_RETRIES),
            ("backoff_factor", "0", 0.0),
            ("backoff_max", 9.5, 9.5),
            ("supabase_url", " https://abc.supabase.co/ ", "https://abc.supabase.co"),
            ("supabase_url", "http://127.0.0.1:54321", "http://127.0.0.1:54321"),
            ("supabase_anon_key", "anon-key-0123456789\r\n", "anon-key-0123456789"),
            ("embed_base_url", "https://careers.example.com/embed/", "https://careers.example.com/embed"),
        ],
    )
    def test_a_good_value_is_parsed(self, name: str, raw: Any, setting: Any) -> None:
        parsed = EXTRAS[name].read(raw)
        assert parsed == setting
        assert type(parsed) is type(setting)

    @pytest.mark.parametrize(
        ("name", "raw", "message"),
        [
            ("timeout", 0, "timeout must be a number of seconds above 0 and at most 86400; got 0."),
            ("timeout", "soon", "timeout must be a number of seconds from 0 to 86400 (a day); got 'soon'."),
            ("timeout", True, "timeout must be a number of seconds from 0 to 86400 (a day); got True."),
            ("timeout", MAX_SECONDS + 1, "timeout must be a number of seconds from 0 to 86400"),
            ("backoff_max", "inf", "backoff_max must be a number of seconds from 0 to 86400"),
            ("backoff_factor", -0.5, "backoff_factor must be a number of seconds from 0 to 86400"),
            ("max_retries", 1.5, "max_retries must be a whole number from 0 to 100; got 1.5."),
            ("max_retries", "-1", "max_retries must be a whole number from 0 to 100; got '-1'."),
            ("max_retries", MAX_RETRIES + 1, "max_retries must be a whole number from 0 to 100"),
            ("max_retries", "9" * 5000, "max_retries must be a whole number from 0 to 100"),
            ("supabase_url", "ftp://x", "supabase_url must be an http(s) URL; got 'ftp://x'."),
            ("supabase_url", "https://exa mple.com", "supabase_url must be an http(s) URL without spaces"),
            ("supabase_url", "https://h.example:0", "supabase_url has a port that is not a number from 1"),
            ("embed_base_url", 3, "embed_base_url must be an http(s) URL; got 3."),
            ("supabase_anon_key", 5, "supabase_anon_key must be a string."),
        ],
    )
    def test_a_bad_value_is_a_configuration_error_naming_the_extra(
        self, name: str, raw: Any, message: str
    ) -> None:
        with pytest.raises(JobMojitoConfigError, match=re.escape(message)) as raised:
            EXTRAS[name].read(raw)
        assert isinstance(raised.value, ValueError)

    @pytest.mark.parametrize(
        "key", ["anon\nkey-0123456789", "\u201canon-key-0123456789\u201d", "anon key-0123"]
    )
    def test_a_secret_a_header_cannot_carry_is_refused_without_showing_it(self, key: str) -> None:
        with pytest.raises(JobMojitoConfigError, match="value is not shown") as raised:
            EXTRAS["supabase_anon_key"].read(key)
        assert "anon" not in str(raised.value).replace("supabase_anon_key", "")
        assert "key-0123" not in str(raised.value)

    @pytest.mark.parametrize(
        "extra", [extra for extra in EXTRAS.values() if extra.json_type != "string"], ids=lambda e: e.name
    )
    def test_the_forms_lower_bound_is_the_parsers(self, extra: connection.Extra) -> None:
        """The form refuses what the hook would: the schema's bound and the parser agree."""
        step = 1 if extra.json_type == "integer" else 0.001
        if extra.minimum is not None:
            assert extra.read(extra.minimum) == extra.minimum
            with pytest.raises(JobMojitoConfigError):
                extra.read(extra.minimum - step)
        else:
            assert extra.exclusive_minimum is not None
            assert extra.read(extra.exclusive_minimum + step) == extra.exclusive_minimum + step
            with pytest.raises(JobMojitoConfigError):
                extra.read(extra.exclusive_minimum)


class TestHookArguments:
    """The hook's keyword arguments override the extras of the same names."""

    def test_known_arguments_are_kept_and_none_means_not_given(self) -> None:
        overrides = {"timeout": 3, "max_retries": None, "embed_base_url": "https://e.example/embed"}
        assert check_overrides(overrides) == {"timeout": 3, "embed_base_url": "https://e.example/embed"}
        assert check_overrides({}) == {}

    def test_values_are_checked_with_the_connections_when_it_is_read(self) -> None:
        """The hook reads its connection on first use, never when a DAG is parsed."""
        assert check_overrides({"timeout": "soon"}) == {"timeout": "soon"}

    def test_an_unknown_argument_is_a_type_error_naming_it_and_the_known_ones(self) -> None:
        with pytest.raises(TypeError, match="Unexpected keyword argument 'timout'") as raised:
            check_overrides({"timeout": 3, "timout": 5})
        assert str(raised.value).endswith(
            "timeout, max_retries, backoff_factor, backoff_max, supabase_url, supabase_anon_key, "
            "embed_base_url."
        )

    def test_the_secret_argument_is_never_shown(self) -> None:
        with pytest.raises(TypeError) as raised:
            check_overrides({"supabase_anon_key_": "anon-key-0123456789"})
        assert "anon-key-0123456789" not in str(raised.value)


class TestDocumentation:
    def test_the_hooks_param_lines_are_the_form_descriptions(self) -> None:
        lines = param_docs().splitlines()
        assert lines == [
            f":param {name}: {field['description'][0].lower()}{field['description'][1:]}"
            for name, field in FORM_FIELDS.items()
        ]
        assert lines[0] == ":param timeout: seconds to wait for each attempt of an HTTP call (default 30)."

    def test_indented_param_lines_join_a_class_docstring(self) -> None:
        class_docstring = "Talk to JobMojito.\n\n    :param jobmojito_conn_id: the connection.\n"
        docstring = class_docstring + param_docs("    ")
        assert inspect.cleandoc(docstring).splitlines()[2:] == [
            ":param jobmojito_conn_id: the connection.",
            *param_docs().splitlines(),
        ]

    def test_the_markdown_table_has_a_row_per_extra(self) -> None:
        header, rule, *rows = markdown_table().splitlines()
        assert header == "| extra | form label | default | meaning |"
        assert rule == "|---|---|---|---|"
        assert [row.split(" | ")[0] for row in rows] == [f"| `{name}`" for name in EXTRAS]
        assert rows[0] == (
            "| `timeout` | Timeout (s) | `30` | seconds to wait for each attempt of an HTTP call |"
        )
        assert "| the API host's origin |" in rows[4]
        assert "| none |" in rows[5]

    def test_the_command_that_regenerates_the_table_prints_it(self) -> None:
        printed = _run_python("-m", "airflow_provider_jobmojito.connection")
        assert printed == markdown_table()


def test_the_declaration_imports_nothing_from_airflow() -> None:
    """Airflow's ProvidersManager calls get_provider_info, which reads the declaration: loading
    Airflow from there could start an import cycle."""
    loaded = _run_python(
        "-c",
        "import sys\n"
        "from airflow_provider_jobmojito import connection, get_provider_info\n"
        "get_provider_info(); connection.conn_fields(); connection.markdown_table()\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'airflow'))",
    )
    assert loaded == "[]\n"


def _run_python(*arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
