"""Every third-party module the package imports is a declared requirement with a lower bound.

A module that is only installed because something else happens to need it breaks the day that
something changes: pip picked urllib3 1.26 beside requests, and the hook, which needs urllib3 2's
``BaseHTTPResponse``, failed to import. So the check reads the package's own imports, finds which
installed distribution provides each module, and holds that against ``[project] dependencies``.
Imports that may fail are allowed when they are guarded: under ``if TYPE_CHECKING``, in a ``try``
that catches ``ImportError``, or listed in :data:`OPTIONAL` with the reason they are optional.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

PACKAGE = "airflow_provider_jobmojito"
#: Optional modules: each imported only where its absence is expected and handled.
OPTIONAL = {
    # connection.form_widgets(), called by Airflow 2.11 to 3.1 for the legacy connection form; Airflow
    # 3 has them only with apache-airflow-providers-fab, and its ProvidersManager handles the failure.
    "wtforms": "the legacy connection form (Airflow 2.11 to 3.1, with FAB)",
    "flask_appbuilder": "the legacy connection form (Airflow 2.11 to 3.1, with FAB)",
    # The sandbox's pytest plugin: only pytest loads it (the pytest11 entry point).
    "pytest": "the sandbox's pytest plugin, which only pytest loads",
    # results_parquet.py, only when an export writes Parquet (the parquet extra).
    "pyarrow": "the Parquet export (the parquet extra)",
}
#: Distributions that the ``apache-airflow`` requirement brings at its own version (Airflow 3 splits
#: itself into these); importing ``airflow.triggers.base`` from them is importing Airflow.
AIRFLOW_PARTS = {"apache-airflow-core", "apache-airflow-task-sdk"}


@dataclass(frozen=True)
class Import:
    module: str
    where: str
    #: Inside a function: the module is loaded only when that function runs.
    deferred: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(node: ast.Try) -> bool:
    names = {"ImportError", "ModuleNotFoundError"}
    for handler in node.handlers:
        caught = handler.type
        kinds = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(kind, ast.Name) and kind.id in names for kind in kinds):
            return True
    return False


def _third_party_imports() -> list[Import]:
    """The package's imports of modules outside the standard library that no guard covers."""
    found: list[Import] = []

    def visit(node: ast.AST, where: str, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for item in child.orelse:
                    visit(item, where, deferred)
                continue
            if isinstance(child, ast.Try) and _catches_import_error(child):
                # The guarded imports are the try's body; its handlers and the rest are not.
                for item in (*child.handlers, *child.orelse, *child.finalbody):
                    visit(item, where, deferred)
                continue
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                modules = [child.module]
            else:
                inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                visit(child, where, inner)
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in {"__future__", PACKAGE}:
                    found.append(Import(module, f"{where}:{child.lineno}", deferred))

    root = _package_root()
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root).as_posix()
        visit(ast.parse(path.read_text(encoding="utf-8")), where, deferred=False)
    return found


def _package_root() -> Path:
    """The package's source: this tree's, or where it is installed (scripts/test_installed.py runs
    the suite from a copy of tests/ without the package)."""
    if (REPO / PACKAGE).is_dir():
        return REPO / PACKAGE
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin).parent


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = (Requirement(line) for line in project["dependencies"])
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


@functools.cache
def _distribution_of(module: str) -> str:
    """The installed distribution whose files hold ``module`` (``airflow.providers.common.compat``
    is apache-airflow-providers-common-compat, not apache-airflow)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{module} is not installed here"
    assert spec.origin is not None, f"{module} is a namespace package"
    origin = os.path.realpath(spec.origin)
    owner = _files_of(module.partition(".")[0]).get(origin)
    assert owner is not None, f"no installed distribution holds {origin} ({module})"
    return "apache-airflow" if owner in AIRFLOW_PARTS else owner


@functools.cache
def _files_of(top_level: str) -> dict[str, str]:
    """Each file of the distributions that provide the top-level module ``top_level``, by real path:
    several share ``airflow`` (Airflow itself and every provider)."""
    owners: dict[str, str] = {}
    for name in packages_distributions().get(top_level, []):
        dist = distribution(name)
        for file in dist.files or ():
            owners[os.path.realpath(str(dist.locate_file(file)))] = canonicalize_name(name)
    return owners


IMPORTS = _third_party_imports()
REQUIRED = [i for i in IMPORTS if i.module.partition(".")[0] not in OPTIONAL]


def test_the_scan_sees_the_imports_that_matter() -> None:
    """The scan itself: it finds what transport.py and transport_async.py import at the top."""
    assert {"airflow", "requests", "urllib3", "httpx", "pendulum"} <= {
        i.module.partition(".")[0] for i in REQUIRED
    }


@pytest.mark.parametrize(
    "imported",
    REQUIRED,
    ids=lambda i: f"{i.module}@{i.where}",
)
def test_every_import_is_a_declared_requirement(imported: Import) -> None:
    declared = _declared()
    dist = _distribution_of(imported.module)
    assert dist in declared, (
        f"{imported.where} imports {imported.module}, from {dist}, which pyproject.toml does not "
        f"declare: add it to [project] dependencies with a lower bound, or guard the import"
    )


def test_optional_imports_are_deferred() -> None:
    """An optional module is imported inside the function that needs it, so that importing any
    module of the package works without it; the pytest plugin is the one module only pytest loads."""
    for imported in IMPORTS:
        top = imported.module.partition(".")[0]
        if top in OPTIONAL and not imported.deferred:
            assert (top, imported.where.partition(":")[0]) == ("pytest", "sandbox/pytest_plugin.py"), (
                f"{imported.where} imports {imported.module} ({OPTIONAL[top]}) at module level"
            )


@pytest.mark.parametrize("name", sorted(_declared()))
def test_every_requirement_has_a_lower_bound_that_is_installed_and_imported(name: str) -> None:
    requirement = _declared()[name]
    floors = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
    assert floors, f"{requirement} has no lower bound"
    try:
        installed = distribution(name).version
    except PackageNotFoundError:
        pytest.fail(f"{name} is declared but not installed")
    assert requirement.specifier.contains(installed, prereleases=True), f"{name} {installed}: {requirement}"
    # A declared requirement nothing imports is a stale one.
    assert name in {_distribution_of(i.module) for i in REQUIRED}, f"{name} is declared but not imported"


@pytest.mark.skipif(
    os.environ.get("JOBMOJITO_LOWEST") != "1",
    reason="only `make test-lowest` installs the lower bounds; elsewhere newer releases are right",
)
def test_make_test_lowest_runs_with_every_requirement_at_its_lower_bound() -> None:
    """A bound that nothing else raised: what the lowest run tests is what pyproject.toml says."""
    installed = {name: Version(distribution(name).version) for name in _declared()}
    floors = {
        name: max(Version(spec.version) for spec in requirement.specifier if spec.operator == ">=")
        for name, requirement in _declared().items()
    }
    assert installed == floors
