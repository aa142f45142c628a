"""The built documentation site: the API reference documents every public class, the connection
page shows the declaration's extras, and the changelog page holds every release of CHANGELOG.md.

Needs Sphinx and the other tools of docs/requirements.txt, which `make docs` installs; `make docs`
builds the site, then runs these tests on it (``JOBMOJITO_DOCS_BUILD`` names the build). Without
that variable they build the site themselves, with the same options (warnings are errors).
"""

from __future__ import annotations

import html
import importlib
import inspect
import os
import pkgutil
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_jobmojito
from airflow_provider_jobmojito.connection import markdown_table
from tests.conftest import REPO
from tests.docs.pages import DOCS

pytest.importorskip("sphinx", reason="the documentation's tools are not installed: `make docs` installs them")
pytest.importorskip(
    "myst_parser", reason="the documentation's tools are not installed: `make docs` installs them"
)

#: What `make docs` runs, less the output directory.
SPHINX_BUILD = ["-m", "sphinx", "-E", "-W", "--keep-going", "-n", "-q", "-b", "html"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built HTML site: `make docs`'s, or one built here."""
    if built := os.environ.get("JOBMOJITO_DOCS_BUILD"):
        return Path(built).resolve()
    out = tmp_path_factory.mktemp("docs-html")
    result = subprocess.run(
        [sys.executable, *SPHINX_BUILD, str(DOCS), str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("docs-airflow-home"))},
    )
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert (result.returncode, warnings) == (0, []), result.stderr
    return out


def _public_classes() -> set[str]:
    """``module.Class`` for every public class of the package: defined in a public module (no
    component starting with an underscore), named without a leading underscore, and listed in the
    module's ``__all__`` when it has one."""
    package = airflow_provider_jobmojito
    found = set()
    modules = [package.__name__] + [
        info.name for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    ]
    for name in modules:
        if any(part.startswith("_") for part in name.split(".")):
            continue
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == name
                and not attribute.startswith("_")
                and (exported is None or attribute in exported)
            ):
                found.add(f"{name}.{attribute}")
    return found


def _documented(site: Path, *roles: str) -> set[str]:
    from sphinx.util.inventory import InventoryFile

    with (site / "objects.inv").open("rb") as inventory:
        data: dict[str, dict[str, Any]] = InventoryFile.load(inventory, "", posixpath.join)
    return {name for role in roles for name in data.get(role, {})}


def _text(fragment: str) -> str:
    """An HTML fragment's text, tags dropped, entities and typographic apostrophes undone."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("\u2019", "'").strip()


def test_every_public_class_has_an_entry_in_the_api_reference(site: Path) -> None:
    public = _public_classes()
    assert len(public) >= 70  # the walk found the package's classes, not an empty set
    assert "airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook" in public
    missing = public - _documented(site, "py:class", "py:exception")
    assert not missing, f"public classes without an entry in the API reference: {sorted(missing)}"


def test_the_connection_page_shows_the_declarations_table_of_extras(site: Path) -> None:
    page = (site / "connection.html").read_text(encoding="utf-8")
    table = re.search(r'class="[^"]*jobmojito-connection-extras[^"]*".*?(<table.*?</table>)', page, re.S)
    assert table, "connection.html has no table of extras"
    rows = [
        [_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)
    ]
    declared = [
        [cell.strip().replace("`", "") for cell in line.strip("|").split(" | ")]
        for line in markdown_table().splitlines()
        if not line.startswith("|---")
    ]
    assert rows == declared
    assert rows[1][:3] == ["timeout", "Timeout (s)", "30"]


def test_the_changelog_page_holds_every_release_of_the_changelog(site: Path) -> None:
    releases = re.findall(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert "1.0.0" in releases
    page = (site / "changelog.html").read_text(encoding="utf-8")
    # A release with a link definition at the end of the file is a link, the others plain text.
    headings = [
        _text(h).strip("¶").replace("[", "").replace("]", "")
        for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page, re.S)
    ]
    assert [heading.split(" - ")[0] for heading in headings] == releases
