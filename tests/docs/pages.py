"""The documentation's sources (docs/), read as text: its pages and the files they include."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

DOCS = REPO / "docs"

#: A MyST directive block: ```{name} argument, then its ``:option: value`` lines.
_DIRECTIVE = re.compile(
    r"^```\{(?P<name>[\w-]+)\}[ \t]*(?P<argument>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S
)
_OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>[^\n]*)$", re.M)


@dataclass(frozen=True)
class Include:
    """One ``literalinclude`` of a page.

    :param page: the page, relative to docs/.
    :param file: the included file, resolved.
    :param start_after: the text the included lines follow, if the page names one.
    :param end_before: the text the included lines stop before, if the page names one.
    """

    page: str
    file: Path
    start_after: str | None
    end_before: str | None


def pages() -> list[Path]:
    """Every page of the site (docs/**/*.md), build output excluded."""
    return sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts)


def _unquote(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def literal_includes() -> list[Include]:
    """Every ``literalinclude`` of every page."""
    found = []
    for page in pages():
        for block in _DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            if block["name"] != "literalinclude":
                continue
            options = {m["key"]: _unquote(m["value"]) for m in _OPTION.finditer(block["body"])}
            found.append(
                Include(
                    page=str(page.relative_to(DOCS)),
                    file=(page.parent / block["argument"].strip()).resolve(),
                    start_after=options.get("start-after"),
                    end_before=options.get("end-before"),
                )
            )
    return found
