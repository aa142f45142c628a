"""Connection extras and hook arguments become validated settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_jobmojito import DEFAULT_API_URL
from airflow_provider_jobmojito.connection import EXTRAS
from airflow_provider_jobmojito.exceptions import JobMojitoConfigError
from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from airflow_provider_jobmojito.settings import HookSettings


def resolve(host: str | None = None, extras: dict[str, Any] | None = None, **overrides: Any) -> HookSettings:
    return HookSettings.resolve(host=host, login=None, password="t", extras=extras or {}, overrides=overrides)


def test_defaults_match_the_documentation() -> None:
    settings = resolve()
    assert settings.base_url == DEFAULT_API_URL == "https://cool.jobmojito.com/functions/v1"
    assert settings.timeout == 30
    assert (settings.retry.max_retries, settings.retry.backoff_factor, settings.retry.backoff_max) == (
        5,
        0.5,
        30,
    )
    assert settings.supabase_url == "https://cool.jobmojito.com"
    assert settings.embed_base_url == "https://try.interviewmojito.com/embed"
    assert settings.supabase_anon_key is None


def test_hook_arguments_override_extras_which_override_defaults() -> None:
    settings = resolve(extras={"timeout": 7, "max_retries": 2}, timeout=3)
    assert settings.timeout == 3
    assert settings.retry.max_retries == 2


def test_uri_extras_arrive_as_strings_and_are_cast() -> None:
    settings = resolve(
        extras={"timeout": "12.5", "max_retries": "3", "backoff_factor": "0", "backoff_max": "9"}
    )
    assert (settings.timeout, settings.retry.max_retries, settings.retry.backoff_max) == (12.5, 3, 9)


def test_empty_form_fields_mean_the_default() -> None:
    assert resolve(extras={"timeout": "", "supabase_url": None}).timeout == 30


def test_legacy_prefixed_extras_are_read() -> None:
    assert resolve(extras={"extra__jobmojito__timeout": 4}).timeout == 4


def test_an_unknown_extra_is_an_error_that_lists_the_known_ones() -> None:
    with pytest.raises(JobMojitoConfigError, match="Unknown connection extra 'timout'") as raised:
        resolve(extras={"timout": 5})
    for name in EXTRAS:
        assert name in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"timeout": 0}, "timeout must be a number of seconds above 0"),
        ({"timeout": "soon"}, "timeout must be a number"),
        ({"max_retries": -1}, "max_retries must be a whole number"),
        ({"max_retries": 1.5}, "max_retries must be a whole number"),
        ({"backoff_max": "inf"}, "backoff_max must be a number"),
        ({"supabase_url": "ftp://x"}, "supabase_url must be an http"),
        ({"embed_base_url": 3}, "embed_base_url must be an http"),
        # Values that used to be accepted, then failed every call with a raw OverflowError.
        ({"timeout": 1e12}, "timeout must be a number of seconds from 0 to 86400"),
        ({"backoff_max": 10**400}, "backoff_max must be a number of seconds from 0 to 86400"),
        ({"max_retries": 10**6}, "max_retries must be a whole number from 0 to 100"),
        ({"max_retries": "9" * 5000}, "max_retries must be a whole number from 0 to 100"),
        ({"supabase_url": "https://exa mple.com"}, "without spaces or line breaks"),
    ],
)
def test_bad_values_name_the_setting(extras: dict[str, Any], message: str) -> None:
    with pytest.raises(JobMojitoConfigError, match=message):
        resolve(extras=extras)


def test_host_may_be_a_bare_name_with_port_and_path_from_a_uri_connection() -> None:
    settings = HookSettings.resolve(
        host="api.example.com",
        port=8443,
        schema="functions/v1",
        login=None,
        password="t",
        extras={},
        overrides={},
    )
    assert settings.base_url == "https://api.example.com:8443/functions/v1"
    assert settings.supabase_url == "https://api.example.com:8443"


def test_login_switches_to_sign_in_mode() -> None:
    signs_in = HookSettings.resolve(host=None, login="a@b.c", password="p", extras={}, overrides={})
    assert signs_in.signs_in
    assert not resolve().signs_in


class TestConnectionForms:
    def test_json_connection(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_JM_JSON",
            json.dumps(
                {
                    "conn_type": "jobmojito",
                    "host": "http://127.0.0.1:1/functions/v1",
                    "password": "tok",
                    "extra": {"timeout": 4, "max_retries": 1},
                }
            ),
        )
        settings = JobMojitoHook("jm_json").settings
        assert (settings.base_url, settings.timeout, settings.retry.max_retries) == (
            "http://127.0.0.1:1/functions/v1",
            4,
            1,
        )

    def test_uri_connection(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_JM_URI",
            "jobmojito://:tok@http%3A%2F%2F127.0.0.1%3A1%2Ffunctions%2Fv1/?timeout=4&max_retries=1",
        )
        settings = JobMojitoHook("jm_uri").settings
        assert (settings.base_url, settings.timeout, settings.retry.max_retries) == (
            "http://127.0.0.1:1/functions/v1",
            4,
            1,
        )
        assert settings.password == "tok"


class TestSecretsSentInHeaders:
    """A token or anon key copied with a stray newline works; one a header cannot carry is refused
    before anything is sent, without showing it."""

    TOKEN = "opaque-token-0123456789abcdef"

    def test_whitespace_around_the_token_and_anon_key_is_dropped(self) -> None:
        settings = HookSettings.resolve(
            host=None,
            login=None,
            password=f"  {self.TOKEN}\r\n",
            extras={"supabase_anon_key": "anon-key-0123456789\n"},
            overrides={},
        )
        assert (settings.password, settings.supabase_anon_key) == (self.TOKEN, "anon-key-0123456789")

    @pytest.mark.parametrize(
        "token", [f"{TOKEN[:10]}\n{TOKEN[10:]}", f"\u201c{TOKEN}\u201d", f"{TOKEN[:10]} {TOKEN[10:]}"]
    )
    def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(self, token: str) -> None:
        with pytest.raises(JobMojitoConfigError, match=r"access token .* value is not shown") as raised:
            HookSettings.resolve(host=None, login=None, password=token, extras={}, overrides={})
        assert self.TOKEN[:10] not in str(raised.value)
        assert self.TOKEN[10:] not in str(raised.value)

    def test_an_anon_key_a_header_cannot_carry_is_refused_without_showing_it(self) -> None:
        with pytest.raises(JobMojitoConfigError, match="supabase_anon_key holds a character") as raised:
            resolve(extras={"supabase_anon_key": "anon\nkey-0123456789"})
        assert "key-0123456789" not in str(raised.value)

    def test_a_sign_in_password_is_kept_exactly_as_given(self) -> None:
        settings = HookSettings.resolve(
            host=None, login="a@b.c", password=" pass phrase with spaces ", extras={}, overrides={}
        )
        assert settings.password == " pass phrase with spaces "


class TestPorts:
    def test_the_port_field_completes_a_full_url_in_host(self) -> None:
        settings = HookSettings.resolve(
            host="http://127.0.0.1/functions/v1", port=8080, login=None, password="t", extras={}, overrides={}
        )
        assert settings.base_url == "http://127.0.0.1:8080/functions/v1"

    def test_a_port_field_that_contradicts_the_host_is_refused(self) -> None:
        with pytest.raises(JobMojitoConfigError, match="names port 8443, but its port field says 8080"):
            HookSettings.resolve(
                host="https://h.example:8443", port=8080, login=None, password="t", extras={}, overrides={}
            )

    def test_a_bad_port_field_is_a_configuration_error(self) -> None:
        with pytest.raises(
            JobMojitoConfigError, match="port has a port that is not a number from 1 to 65535"
        ):
            HookSettings.resolve(
                host="https://h.example", port=70000, login=None, password="t", extras={}, overrides={}
            )

    @pytest.mark.parametrize(
        "host", ["http://127.0.0.1:99999/functions/v1", "https://h.example:port/v1", "http://h.example:0/v1"]
    )
    def test_a_port_out_of_range_is_a_configuration_error(self, host: str) -> None:
        with pytest.raises(
            JobMojitoConfigError, match="host has a port that is not a number from 1 to 65535"
        ):
            resolve(host=host)
