"""The documentation's sources: every code sample is a file the suite runs, included (never a
copy), and what points into the documentation (the provider info, the README) names pages that exist.

These read docs/ as text and need no Sphinx; tests/docs/test_build.py checks the built site.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from airflow_provider_jobmojito import get_provider_info
from tests.conftest import REPO
from tests.docs.pages import DOCS, Include, literal_includes, pages

EXAMPLE_DAGS = REPO / "example_dags"
TESTS = REPO / "tests"
#: Where the how-to-guide paths of the provider info point (the convention of Airflow's providers).
HOW_TO_PREFIX = "/docs/airflow-provider-jobmojito/"
#: Where the logo path of the provider info points (the same convention).
LOGO_PREFIX = "/docs/integration-logos/"


def _example_dags_the_suite_runs() -> set[str]:
    """The example DAG files (by module name) that a test parses and runs, by ``load_example_dag``."""
    called = re.compile(r"load_example_dag\(\s*\"(\w+)\"")
    return {
        name
        for test_file in TESTS.rglob("test_*.py")
        for name in called.findall(test_file.read_text(encoding="utf-8"))
    }


def _test_function_around(file: Path, line_number: int) -> str | None:
    """The name of the test function (``test_*``) whose body holds the line, if one does."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
            and node.lineno <= line_number <= (node.end_lineno or node.lineno)
        ):
            return node.name
    return None


def _line_of(file: Path, text: str) -> int:
    lines = [n for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1) if text in line]
    assert len(lines) == 1, f"{file.name}: {text!r} must be on exactly one line, found on {lines}"
    return lines[0]


INCLUDES = literal_includes()


def test_the_pages_include_code() -> None:
    assert len(INCLUDES) >= 10
    assert {include.file.parent for include in INCLUDES} == {
        EXAMPLE_DAGS,
        TESTS / "hooks",
        TESTS / "example_dags",
    }


@pytest.mark.parametrize("include", INCLUDES, ids=lambda i: f"{i.page}:{i.file.name}:{i.start_after}")
def test_every_included_sample_is_code_the_suite_runs(include: Include) -> None:
    assert include.file.is_file(), f"{include.page} includes {include.file}, which does not exist"
    for marker in (include.start_after, include.end_before):
        if marker is not None:
            _line_of(include.file, marker)
    if include.file.parent == EXAMPLE_DAGS:
        # A spec file (jobmojito_positions.yaml) runs through the example DAG that reads it.
        readers = {include.file.stem}
        if include.file.suffix != ".py":
            readers = {dag.stem for dag in EXAMPLE_DAGS.glob("*.py") if include.file.name in dag.read_text()}
        assert readers & _example_dags_the_suite_runs(), (
            f"{include.page} includes {include.file.name}, which no test runs with load_example_dag"
        )
    else:
        assert include.file.is_relative_to(TESTS)
        assert include.file.name.startswith("test_")
        assert include.start_after is not None
        assert include.end_before is not None
        start, end = _line_of(include.file, include.start_after), _line_of(include.file, include.end_before)
        test = _test_function_around(include.file, start)
        assert test is not None, f"{include.file.name}: the sample at line {start} is in no test function"
        assert _test_function_around(include.file, end) == test


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(DOCS)))
def test_no_page_holds_python_code_of_its_own(page: Path) -> None:
    """Python is included from a file the suite runs, so that it cannot go stale unseen."""
    fences = re.findall(
        r"^```(?:\{code-block\}|\{code\})?[ \t]*(\w+)", page.read_text(encoding="utf-8"), re.M
    )
    assert not [language for language in fences if language.lower() in {"python", "py", "python3", "pycon"}]


def test_every_how_to_guide_of_the_provider_info_is_a_page() -> None:
    (integration,) = get_provider_info()["integrations"]
    guides = integration["how-to-guide"]
    assert guides, "the integration names no how-to guide"
    for guide in guides:
        assert guide.startswith(HOW_TO_PREFIX), guide
        assert (DOCS / guide.removeprefix(HOW_TO_PREFIX)).is_file(), f"{guide} names no page of docs/"


def test_the_integration_logo_of_the_provider_info_is_an_svg_in_docs() -> None:
    from xml.etree import ElementTree

    (integration,) = get_provider_info()["integrations"]
    logo = integration["logo"]
    # Where Airflow's own providers keep theirs: /docs/integration-logos/ of the provider's docs.
    assert logo.startswith(LOGO_PREFIX), logo
    path = DOCS / "integration-logos" / logo.removeprefix(LOGO_PREFIX)
    assert path.is_file(), f"{logo} names no file of docs/integration-logos/"
    root = ElementTree.parse(path).getroot()  # noqa: S314 (our own file)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_the_package_index_and_airflow_name_the_same_documentation_url() -> None:
    import tomllib

    from airflow_provider_jobmojito import DOCUMENTATION_URL

    urls = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    (integration,) = get_provider_info()["integrations"]
    assert urls["Documentation"] == integration["external-doc-url"] == DOCUMENTATION_URL
    assert DOCUMENTATION_URL.startswith("https://")


# -- the README: the package index's description, and the landing page of the repository ----------

README = REPO / "README.md"
#: The published documentation's pages, as the README links them.
PUBLISHED_PAGES = re.compile(
    r"https://airflow-provider-jobmojito\.readthedocs\.io/en/latest/([\w/.-]+)\.html"
)


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def test_every_link_of_the_readme_is_absolute_so_it_works_on_the_package_index() -> None:
    """PyPI shows the README as the package's description, where a relative link goes nowhere."""
    targets = re.findall(r"\]\(([^)\s]+)\)", _readme()) + re.findall(r"<(https?://[^>]+)>", _readme())
    assert targets
    assert [target for target in targets if not target.startswith("https://")] == []


def test_every_link_from_the_readme_into_the_documentation_names_a_page() -> None:
    pages_linked = PUBLISHED_PAGES.findall(_readme())
    assert len(pages_linked) >= 15
    assert [page for page in pages_linked if not (DOCS / f"{page}.md").is_file()] == []


def test_the_readmes_example_is_an_example_dag_region_the_suite_runs() -> None:
    """The README cannot include a file, so its one example is held to a marked region of an
    example DAG: the code people read first is code the suite runs."""
    (example,) = re.findall(r"^```python\n(.*?)^```$", _readme(), re.M | re.S)
    # Dedented, the region is top-level code, which ruff formats with two blank lines between
    # definitions (it formats the README's code blocks too) where the DAG file has one.
    example = re.sub(r"\n{3,}", "\n\n", example)
    regions = {}
    for dag_file in EXAMPLE_DAGS.glob("*.py"):
        text = dag_file.read_text(encoding="utf-8")
        for name, region in re.findall(r"# \[START (\w+)\]\n(.*?)\n[ \t]*# \[END \1\]", text, re.S):
            regions[textwrap.dedent(region) + "\n"] = (dag_file.stem, name)
    assert example in regions, "README.md's example is no [START]/[END] region of example_dags/"
    assert regions[example][0] in _example_dags_the_suite_runs()
