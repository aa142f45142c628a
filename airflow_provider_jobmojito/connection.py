"""The connection's extras, declared once, and everything derived from that declaration.

:data:`EXTRAS` names each extra the hook reads (``conn.extra_dejson[name]``) with its label,
description, default, JSON-schema facts and parser. From it come the provider info's
``conn-fields`` (:func:`conn_fields`, the form on Airflow 3.2 and later), the legacy wtforms form
(:func:`form_widgets` and :func:`ui_field_behaviour`, Airflow 2.11 to 3.1), the hook's
``:param:`` lines (:func:`param_docs`), the documentation's table (:func:`markdown_table`), the parsing in
:class:`~airflow_provider_jobmojito.settings.HookSettings` and the check of the hook's keyword
arguments (:func:`check_overrides`).

Airflow's ProvidersManager imports this module through ``get_provider_info``, so it imports
nothing from Airflow at module level: the error class is imported when a value is refused.

Run ``python -m airflow_provider_jobmojito.connection`` to print the documentation's table.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Where the API is when the connection's host is empty: production.
DEFAULT_API_URL: Final = "https://cool.jobmojito.com/functions/v1"

#: The longest wait any setting may ask for: a day is plenty for one HTTP call or one backoff,
#: and larger numbers overflow the socket and thread APIs they end up in.
MAX_SECONDS: Final = 24 * 3600
#: The most retries of one call: with backoff doubling to backoff_max, more only wait longer.
MAX_RETRIES: Final = 100


# -- parsers: (name for the message, raw value) -> the setting, or JobMojitoConfigError ---------


def _refuse(message: str) -> NoReturn:
    # Imported only when a value is refused: the exceptions module imports Airflow, which this
    # module must not do at import time (see the module docstring).
    from airflow_provider_jobmojito.exceptions import JobMojitoConfigError

    raise JobMojitoConfigError(message)


def parse_seconds(name: str, value: Any) -> float:
    """A number of seconds from 0 to :data:`MAX_SECONDS`; a string is cast (URI extras are strings).

    :param name: what the value is, for the error message.
    :param value: the raw value.
    :raises JobMojitoConfigError: the value is not such a number (``bool`` is not one either).
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not 0 <= number <= MAX_SECONDS:
        _refuse(f"{name} must be a number of seconds from 0 to {MAX_SECONDS} (a day); got {value!r}.")
    return number


def parse_positive_seconds(name: str, value: Any) -> float:
    """A number of seconds above 0 and at most :data:`MAX_SECONDS`.

    :param name: what the value is, for the error message.
    :param value: the raw value.
    :raises JobMojitoConfigError: the value is not such a number.
    """
    number = parse_seconds(name, value)
    if number <= 0:
        _refuse(f"{name} must be a number of seconds above 0 and at most {MAX_SECONDS}; got {value!r}.")
    return number


def parse_count(name: str, value: Any) -> int:
    """A whole number from 0 to :data:`MAX_RETRIES`, given as an ``int`` or a string of digits.

    :param name: what the value is, for the error message.
    :param value: the raw value.
    :raises JobMojitoConfigError: the value is not such a number (``1.5`` and ``True`` are not).
    """
    if isinstance(value, str):
        value = value.strip()
    whole = isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())
    # len() first: int() of a string of thousands of digits is refused by Python itself.
    if isinstance(value, bool) or not whole or len(str(value)) > 4 or not 0 <= int(value) <= MAX_RETRIES:
        _refuse(f"{name} must be a whole number from 0 to {MAX_RETRIES}; got {value!r}.")
    return int(value)


def parse_url(name: str, value: Any) -> str:
    """An http(s) URL with a host, without the whitespace around it nor a trailing slash.

    :param name: what the value is, for the error message.
    :param value: the raw value.
    :raises JobMojitoConfigError: the value is not such a URL, holds a space or a line break, or
        has a port that is not a number from 1 to 65535.
    """
    if not isinstance(value, str):
        _refuse(f"{name} must be an http(s) URL; got {value!r}.")
    # Copied from a form or a secrets manager, a URL often carries a space or a newline around it.
    url = value.strip()
    if any(character.isspace() or not character.isprintable() for character in url):
        _refuse(f"{name} must be an http(s) URL without spaces or line breaks; got {url!r}.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _refuse(f"{name} must be an http(s) URL; got {url!r}.")
    try:
        port = parts.port
    except ValueError:  # urllib refuses a port that is not a number, or above 65535
        port = 0
    if port == 0:
        _refuse(f"{name} has a port that is not a number from 1 to 65535; got {url!r}.")
    return url.rstrip("/")


def parse_header_secret(name: str, value: Any) -> str:
    """A secret sent in an HTTP header, without the whitespace a copy from a file or a secrets
    manager often adds; anything else a header cannot carry is refused without showing it.

    :param name: what the value is, for the error message (which never shows the value).
    :param value: the raw value.
    :raises JobMojitoConfigError: the value is not a string, or holds a character other than
        visible ASCII.
    """
    if not isinstance(value, str):
        _refuse(f"{name} must be a string.")
    text = value.strip()
    if not text.isascii() or not text.isprintable() or " " in text:
        # The value is a secret: the message must not show it, even in part.
        _refuse(
            f"{name} holds a character an HTTP header cannot carry (only visible ASCII is allowed: "
            "no spaces, line breaks or typographic quotes); the value is not shown."
        )
    return text


# -- the declaration ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Extra:
    """One connection extra: how the form shows it, how the hook reads it, and its default.

    :param name: the key in the connection's extras, and the hook's keyword argument.
    :param label: the form field's label.
    :param summary: what it does, as a sentence without its default or a final full stop.
    :param json_type: its JSON-schema type in ``conn-fields`` (``null`` is always allowed too:
        an empty field means the default).
    :param parse: turns a raw value (a string from a URI connection, or a JSON value) into the
        setting, or raises ``JobMojitoConfigError`` naming it.
    :param default: the setting when the extra is unset; ``None`` when unset means "none", or
        means a value derived elsewhere (then ``derived_default`` says from what).
    :param derived_default: how the default is derived, for people, when ``default`` is ``None``.
    :param minimum: the smallest value allowed, when there is one (JSON-schema ``minimum``).
    :param exclusive_minimum: the bound values must be above (JSON-schema ``exclusiveMinimum``).
    :param secret: a secret: a password field in the form, masked in logs.
    """

    name: str
    label: str
    summary: str
    json_type: Literal["number", "integer", "string"]
    parse: Callable[[str, Any], Any]
    default: float | int | str | None = None
    derived_default: str | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    secret: bool = False

    @property
    def default_text(self) -> str | None:
        """The default as the docs state it (``30``, not ``30.0``), or ``None`` when there is none."""
        if self.derived_default is not None:
            return self.derived_default
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return None if self.default is None else str(self.default)

    @property
    def description(self) -> str:
        """The summary with its default, as the form shows it."""
        if self.default_text is None:
            return f"{self.summary}."
        # "(default: the API host's origin)" introduces a phrase; "(default 30)" names a value.
        joiner = ": " if self.derived_default is not None else " "
        return f"{self.summary} (default{joiner}{self.default_text})."

    def read(self, value: Any) -> Any:
        """The setting a raw value gives: the default when it is ``None``, else the parsed value.

        :param value: the raw value, ``None`` when not given.
        :raises JobMojitoConfigError: the value is given and bad.
        """
        return self.default if value is None else self.parse(self.name, value)

    def conn_field(self) -> dict[str, Any]:
        """This extra's entry in the provider info's ``conn-fields``."""
        schema: dict[str, Any] = {"type": [self.json_type, "null"]}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.exclusive_minimum is not None:
            schema["exclusiveMinimum"] = self.exclusive_minimum
        if self.secret:
            schema["format"] = "password"
        return {"label": self.label, "description": self.description, "schema": schema}


#: Every extra the hook reads, by name, in the form's order.
EXTRAS: Final[Mapping[str, Extra]] = MappingProxyType(
    {
        extra.name: extra
        for extra in (
            Extra(
                name="timeout",
                label="Timeout (s)",
                summary="Seconds to wait for each attempt of an HTTP call",
                json_type="number",
                parse=parse_positive_seconds,
                default=30.0,
                exclusive_minimum=0,
            ),
            Extra(
                name="max_retries",
                label="Max retries",
                summary="Retries of connection errors, timeouts, 408, 429, 502, 503 and 504",
                json_type="integer",
                parse=parse_count,
                default=5,
                minimum=0,
            ),
            Extra(
                name="backoff_factor",
                label="Backoff factor (s)",
                summary="Base of the exponential backoff between retries, with full jitter",
                json_type="number",
                parse=parse_seconds,
                default=0.5,
                minimum=0,
            ),
            Extra(
                name="backoff_max",
                label="Backoff max (s)",
                summary="Longest wait between retries; a longer Retry-After ends the retries",
                json_type="number",
                parse=parse_seconds,
                default=30.0,
                minimum=0,
            ),
            Extra(
                name="supabase_url",
                label="Supabase URL",
                summary="Sign-in mode only: the Supabase project URL",
                json_type="string",
                parse=parse_url,
                derived_default="the API host's origin",
            ),
            Extra(
                name="supabase_anon_key",
                label="Supabase anon key",
                summary="Sign-in mode only: sent as the apikey header when set",
                json_type="string",
                parse=parse_header_secret,
                secret=True,
            ),
            Extra(
                name="embed_base_url",
                label="Embed base URL",
                summary="Base of the iframe URL built from an embed_id",
                json_type="string",
                parse=parse_url,
                default="https://try.interviewmojito.com/embed",
            ),
        )
    }
)


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The hook's keyword arguments that override extras, checked by name only: values are parsed
    with the connection's, when the hook first reads it.

    :param overrides: keyword arguments named after extras; ``None`` means "not given".
    :return: a new dict of the given ones, without those that are ``None``.
    :raises TypeError: an argument is not an extra's name (as Python does for an unexpected
        keyword argument); the message names it and lists the known ones.
    """
    for name in overrides:
        if name not in EXTRAS:
            raise TypeError(
                f"Unexpected keyword argument {name!r}; the connection extras a hook argument may "
                f"override are: {', '.join(EXTRAS)}."
            )
    return {name: value for name, value in overrides.items() if value is not None}


# -- the connection form --------------------------------------------------------------------------


def _placeholder_extra() -> str:
    """The extra field's placeholder: the defaults of the two extras most often changed, as a
    person would type them (``30``, not ``30.0``)."""
    names = ("timeout", "max_retries")
    typed = ", ".join(f"{json.dumps(name)}: {EXTRAS[name].default_text}" for name in names)
    return "{" + typed + "}"


#: The connection form's standard fields: hidden, relabelled, with placeholders. The provider
#: info's ``ui-field-behaviour`` (Airflow 3.2 and later); :func:`ui_field_behaviour` spells the
#: same in snake_case for the hook's classmethod (Airflow 2.11 to 3.1).
UI_FIELD_BEHAVIOUR: Final[dict[str, Any]] = {
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
        "extra": _placeholder_extra(),
    },
}


def conn_fields() -> dict[str, Any]:
    """The provider info's ``conn-fields``: one form field per extra (Airflow 3.2 and later)."""
    return {name: extra.conn_field() for name, extra in EXTRAS.items()}


def ui_field_behaviour() -> dict[str, Any]:
    """:data:`UI_FIELD_BEHAVIOUR` with snake_case keys (``hidden_fields``), a copy: what the hook's
    ``get_ui_field_behaviour()`` returns (Airflow 2.11 to 3.1)."""
    return {key.replace("-", "_"): copy.deepcopy(value) for key, value in UI_FIELD_BEHAVIOUR.items()}


def form_widgets() -> dict[str, Any]:
    """The extra fields of the connection form as wtforms fields: what the hook's
    ``get_connection_form_widgets()`` returns (Airflow 2.11 to 3.1).

    :raises ImportError: wtforms or flask_appbuilder is missing (Airflow 3 without
        apache-airflow-providers-fab; Airflow 3.2 and later never call this).
    """
    # Imported here: workers and a plain Airflow 3 install have neither package.
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import NumberRange, Optional

    widgets: dict[str, Any] = {}
    for name, extra in EXTRAS.items():
        if extra.secret:
            widgets[name] = PasswordField(
                extra.label, description=extra.description, widget=BS3PasswordFieldWidget()
            )
        elif extra.json_type == "integer":
            widgets[name] = IntegerField(
                extra.label,
                description=extra.description,
                validators=[Optional(), NumberRange(min=extra.minimum)],
                widget=BS3TextFieldWidget(),
            )
        else:
            # Airflow 2's form allows no FloatField: a number is typed as text, and the hook
            # casts and checks it (a URI connection's extras are strings anyway).
            widgets[name] = StringField(
                extra.label, description=extra.description, widget=BS3TextFieldWidget()
            )
    return widgets


# -- documentation --------------------------------------------------------------------------------


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def param_docs(indent: str = "") -> str:
    """The hook's ``:param name: ...`` lines, one per extra, for its docstring.

    :param indent: put before each line: the indentation of the docstring they join (four spaces
        in a class body's docstring), so that its common indentation stays common.
    """
    return "\n".join(
        f"{indent}:param {name}: {_lowercase_first(extra.description)}" for name, extra in EXTRAS.items()
    )


def markdown_table() -> str:
    """The table of connection extras (GitHub-flavoured Markdown, ending with a newline): the
    documentation's connection page (docs/connection.md) renders it."""

    def default_cell(extra: Extra) -> str:
        if extra.derived_default is not None:
            return extra.derived_default
        return "none" if extra.default_text is None else f"`{extra.default_text}`"

    rows = ["| extra | form label | default | meaning |", "|---|---|---|---|"]
    for name, extra in EXTRAS.items():
        meaning = _lowercase_first(extra.summary)
        if extra.secret:
            meaning += " (a secret: a password field in the form, masked in task logs)"
        rows.append(f"| `{name}` | {extra.label} | {default_cell(extra)} | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    # The documentation's table, for a person to read or paste.
    print(markdown_table(), end="")
