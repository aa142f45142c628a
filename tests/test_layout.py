"""The package's layout, read from its source with :mod:`ast` (nothing of it is imported):

* no import cycle at run time among the package's modules, and
* no module imports a private (underscore) name from another module of the package.

What counts as a run-time import of module ``M``:

* every ``import`` statement in ``M`` that Python may execute, wherever it stands: at module
  level, in a function, a method, a ``try`` or an ``else`` (a function-level import still makes a
  cycle, one that merely strikes later, on the first call);
* except those under ``if TYPE_CHECKING:``, which only a type checker reads (their ``else:``
  branch does run, so it counts);
* relative imports resolved against ``M``'s package (``M`` itself for an ``__init__``).

What ``M`` then depends on, importing a module ``a.b.c`` of the package (``import a.b.c``,
``from a.b.c import name``, or ``from a.b import c``, where ``c`` is a submodule):

* ``a.b.c`` itself;
* the packages ``a`` and ``a.b`` too, whose ``__init__`` Python runs first, except the packages
  ``M`` itself lives in: Python has started their ``__init__`` before ``M`` runs, so a package
  ``__init__`` importing its own submodules is no cycle;
* a package named explicitly for a name it defines (``from a.b import name``, where ``name`` is
  no submodule) counts even when ``M`` lives in it: ``M`` then needs that ``__init__`` to have
  run, not merely started.

A package ``__init__`` is a module like any other: one that imports nothing is a dead end, so it
never closes a cycle. Imports spelled as strings (``importlib.import_module``) are not seen.
"""

from __future__ import annotations

import ast
import importlib.util
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "airflow_provider_jobmojito"


@dataclass(frozen=True)
class Module:
    """One module of the package, parsed.

    :param name: dotted name; a package's ``__init__`` goes by the package's name.
    :param is_package: whether it is a package's ``__init__``.
    :param tree: the parsed source.
    :param file: where it comes from, for messages.
    """

    name: str
    is_package: bool
    tree: ast.Module
    file: str


@dataclass(frozen=True)
class Edge:
    """``importer`` depends on ``imported`` through the import statement at ``line``.

    :param importer: the importing module's dotted name.
    :param imported: the imported module's dotted name.
    :param line: the import statement's line in the importer.
    """

    importer: str
    imported: str
    line: int


def parse_package(root: Path, package: str) -> dict[str, Module]:
    """Every module under ``root``, the directory of the package named ``package``.

    :param root: the package's directory.
    :param package: its dotted name.
    """
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, is_package, tree, str(path.relative_to(root.parent)))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (or any ``x.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_statements(tree: ast.AST, *, run_time_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth.

    :param tree: a parsed module.
    :param run_time_only: leave out those under ``if TYPE_CHECKING:`` (not its ``else:``).
    """
    if isinstance(tree, ast.Import | ast.ImportFrom):
        yield tree
        return
    if run_time_only and isinstance(tree, ast.If) and _is_type_checking(tree.test):
        children: list[ast.AST] = list(tree.orelse)
    else:
        children = list(ast.iter_child_nodes(tree))
    for child in children:
        yield from import_statements(child, run_time_only=run_time_only)


def _imported_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name of the module ``node`` (``from X import ...``) imports from."""
    if node.level == 0:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: the packages Python imports before ``a.b.c``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def run_time_edges(modules: Mapping[str, Module]) -> list[Edge]:
    """Every dependency between modules of the package that an import executed at run time makes
    (see the module docstring for the rules).

    :param modules: the package, from :func:`parse_package`.
    """
    edges: list[Edge] = []
    for module in modules.values():
        started = set(_ancestors(module.name))  # running before module runs: no dependency
        for node in import_statements(module.tree, run_time_only=True):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _imported_from(module, node)
                # A submodule, or else a name the module (or package __init__) defines, or "*".
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            for target in targets:
                implied = [package for package in _ancestors(target) if package not in started]
                edges.extend(
                    Edge(module.name, imported, node.lineno)
                    for imported in [target, *implied]
                    if imported in modules and imported != module.name
                )
    return edges


def import_cycles(edges: list[Edge]) -> list[list[Edge]]:
    """The shortest cycle through each module that is in one, each once (whichever module it
    starts at), as the chain of imports that closes it.

    :param edges: the dependencies, from :func:`run_time_edges`.
    """
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, {}).setdefault(edge.imported, edge)  # first import wins
    cycles: dict[tuple[str, ...], list[Edge]] = {}
    for start in sorted(graph):
        # Breadth first from start: the first way back to start is a shortest cycle through it.
        came_by: dict[str, Edge] = {}
        queue = deque([start])
        while queue and start not in came_by:
            current = queue.popleft()
            for imported, edge in sorted(graph.get(current, {}).items()):
                if imported not in came_by:
                    came_by[imported] = edge
                    queue.append(imported)
        if start not in came_by:
            continue
        chain = [came_by[start]]
        while chain[0].importer != start:
            chain.insert(0, came_by[chain[0].importer])
        # The same cycle found from another of its modules: keep one, starting at its least module.
        first = min(range(len(chain)), key=lambda i: chain[i].importer)
        chain = chain[first:] + chain[:first]
        cycles.setdefault(tuple(edge.importer for edge in chain), chain)
    return [cycles[key] for key in sorted(cycles)]


def describe_cycle(chain: list[Edge], modules: Mapping[str, Module]) -> str:
    """``a (a.py line 3) -> b (b.py line 7) -> a``.

    :param chain: a cycle, from :func:`import_cycles`.
    :param modules: the package, for file names.
    """
    steps = [f"{edge.importer} ({modules[edge.importer].file} line {edge.line})" for edge in chain]
    return " -> ".join([*steps, chain[0].importer])


def private_imports(modules: Mapping[str, Module]) -> list[str]:
    """Every ``from X import _name`` where ``X`` is another module of the package and ``_name``
    is no submodule, described; type-checking imports count too (they couple to the private name
    all the same). Dunder names (``__version__``) are public.

    :param modules: the package, from :func:`parse_package`.
    """
    found: list[str] = []
    for module in modules.values():
        for node in import_statements(module.tree, run_time_only=False):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _imported_from(module, node)
            if source not in modules or source == module.name:
                continue
            for alias in node.names:
                dunder = alias.name.startswith("__") and alias.name.endswith("__")
                private = alias.name.startswith("_") and not dunder
                if private and f"{source}.{alias.name}" not in modules:
                    found.append(f"{module.file} line {node.lineno} imports {alias.name} from {source}")
    return sorted(found)


def _package_directory() -> Path:
    # find_spec locates the package without running its __init__.
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None
    assert spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return parse_package(_package_directory(), PACKAGE)


def test_the_package_has_no_import_cycle_at_run_time(package: dict[str, Module]) -> None:
    cycles = [describe_cycle(chain, package) for chain in import_cycles(run_time_edges(package))]
    assert not cycles, "import cycles at run time:\n" + "\n".join(cycles)


def test_no_module_imports_a_private_name_from_another_module_of_the_package(
    package: dict[str, Module],
) -> None:
    found = private_imports(package)
    assert not found, "private names imported across modules:\n" + "\n".join(found)


# The checker itself, on small made-up packages: it must see what it claims to, and no more.


def _made_up(sources: Mapping[str, str]) -> dict[str, Module]:
    """Modules named like files under a package ``p``: ``{"__init__": ..., "a": ..., "s/b": ...}``."""
    modules: dict[str, Module] = {}
    for path, source in sources.items():
        parts = ["p", *path.split("/")]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, is_package, ast.parse(source), f"p/{path}.py")
    return modules


def _cycles(sources: Mapping[str, str]) -> list[str]:
    modules = _made_up(sources)
    return [" -> ".join(edge.importer for edge in chain) for chain in import_cycles(run_time_edges(modules))]


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        pytest.param(
            {"__init__": "", "a": "from p.b import x", "b": "from p.a import y"},
            ["p.a -> p.b"],
            id="absolute",
        ),
        pytest.param(
            {"__init__": "", "a": "from .b import x", "b": "from . import a"}, ["p.a -> p.b"], id="relative"
        ),
        pytest.param(
            {"__init__": "", "a": "import p.b", "b": "def f():\n    from .a import y\n"},
            ["p.a -> p.b"],
            id="inside a function",
        ),
        pytest.param(
            {
                "__init__": "",
                "a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import X\n",
                "b": "from .a import y",
            },
            [],
            id="type checking only",
        ),
        pytest.param(
            {
                "__init__": "",
                "a": "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    from .b import X\n",
                "b": "from .a import y",
            },
            ["p.a -> p.b"],
            id="the else of type checking",
        ),
        pytest.param(
            {"__init__": "", "s/__init__": "", "s/a": "from ..b import x", "b": "from .s.a import y"},
            ["p.b -> p.s.a"],
            id="two levels up",
        ),
        pytest.param(
            {"__init__": "from .s import a", "s/__init__": "", "s/a": "from p import VERSION"},
            ["p -> p.s.a"],
            id="a name from the package's own __init__",
        ),
        pytest.param(
            {"__init__": "from .s.a import x", "s/__init__": "", "s/a": "from p.b import y", "b": ""},
            [],
            id="a package __init__ importing its submodules",
        ),
        pytest.param(
            {"__init__": "", "s/__init__": "from .a import x", "s/a": "", "b": "import p.s.a", "c": ""},
            [],
            id="an __init__ that imports nothing",
        ),
        pytest.param(
            {"__init__": "", "s/__init__": "from p.b import x", "s/a": "", "b": "from p.s.a import y"},
            ["p.b -> p.s"],
            id="through the __init__ Python runs first",
        ),
        pytest.param(
            {"__init__": "", "a": "from . import b", "b": "from . import c", "c": "import p.a"},
            ["p.a -> p.b -> p.c"],
            id="a longer chain, once",
        ),
    ],
)
def test_the_cycle_check_counts_run_time_imports(sources: dict[str, str], expected: list[str]) -> None:
    assert _cycles(sources) == expected


def test_a_cycle_reads_as_the_chain_of_imports() -> None:
    modules = _made_up({"__init__": "", "a": "import os\nfrom .b import x", "b": "\n\nfrom .a import y"})
    (chain,) = import_cycles(run_time_edges(modules))
    assert describe_cycle(chain, modules) == "p.a (p/a.py line 2) -> p.b (p/b.py line 3) -> p.a"


def test_the_private_name_check_skips_dunders_submodules_and_outside_modules() -> None:
    modules = _made_up(
        {
            "__init__": "__version__ = '1'\n_SECRET = 1",
            "_impl": "",
            "a": "from . import __version__, _impl\nfrom os import _exit\n_mine = 1\n",
            "b": (
                "from typing import TYPE_CHECKING\nfrom p import _SECRET\n"
                "if TYPE_CHECKING:\n    from .a import _mine as mine\n"
            ),
        }
    )
    assert private_imports(modules) == [
        "p/b.py line 2 imports _SECRET from p",
        "p/b.py line 4 imports _mine from p.a",
    ]
