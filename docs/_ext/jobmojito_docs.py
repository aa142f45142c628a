"""Sphinx helpers for this project's documentation.

``jobmojito-connection-extras``: the table of connection extras, rendered from
:func:`airflow_provider_jobmojito.connection.markdown_table`, which renders the one declaration of
the extras (:data:`~airflow_provider_jobmojito.connection.EXTRAS`): the page cannot drift from the
form, the parsing or the hook's docstring. Used in Markdown (MyST) pages, where a directive's
nested content is parsed as Markdown.

A Python domain that resolves the package's short references the way its readers read them: the
docstrings name classes as their module imports them (``:class:`SandboxServer```), and type hints
imported only for the type checker reach autodoc as bare names (``Request``). Such a name that
Sphinx finds nowhere, or in several modules, resolves to the object the referring module means:
the one its namespace holds under that name, else the one nearest to it in the package (the
sandbox's ``Request`` in the sandbox, :class:`airflow_provider_jobmojito.wire.Request` elsewhere).
A name still ambiguous or missing stays a warning, which ``make docs`` makes an error.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.domains.python import PythonDomain
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.domains.python import ObjectEntry
    from sphinx.environment import BuildEnvironment

#: The package whose short references are resolved by :class:`NearestPythonDomain`.
PACKAGE = "airflow_provider_jobmojito"


class ConnectionExtras(SphinxDirective):
    """The connection's extras, one row each: extra, form label, default, meaning."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from airflow_provider_jobmojito.connection import markdown_table

        container = nodes.container(classes=["jobmojito-connection-extras"])
        source = self.get_source_info()[0]
        self.state.nested_parse(
            StringList(markdown_table().splitlines(), source=source), self.content_offset, container
        )
        return [container]


def _shared_depth(a: str, b: str) -> int:
    """How many leading dotted components two names share."""
    depth = 0
    for left, right in zip(a.split("."), b.split("."), strict=False):
        if left != right:
            break
        depth += 1
    return depth


class NearestPythonDomain(PythonDomain):
    """Sphinx's Python domain, with short names of this package resolved from where they are used."""

    def find_obj(  # noqa: PLR0917 (Sphinx's signature, positional as Sphinx calls it)
        self,
        env: BuildEnvironment,
        modname: str,
        classname: str,
        name: str,
        type: str | None,
        searchmode: int = 0,
    ) -> list[tuple[str, ObjectEntry]]:
        matches = super().find_obj(env, modname, classname, name, type, searchmode)
        if not modname or not modname.startswith(PACKAGE) or name.startswith(PACKAGE) or len(matches) == 1:
            return matches
        if not matches and searchmode == 0:
            # A role's exact search found nothing: search by the last component, as type hints are.
            matches = super().find_obj(env, modname, classname, name, type, 1)
        if len(matches) <= 1:
            return matches
        # The object the referring module holds under that name, when it imported it at run time.
        held = getattr(sys.modules.get(modname), name, None)
        if held is not None and hasattr(held, "__qualname__"):
            full = f"{held.__module__}.{held.__qualname__}"
            exact = [match for match in matches if match[0] == full]
            if exact:
                return exact
        # Else the nearest: most leading components shared with the referring module, then the
        # shallowest (wire.Request before sandbox.messages.Request, outside the sandbox).
        best = max(_shared_depth(match[0], modname) for match in matches)
        nearest = [match for match in matches if _shared_depth(match[0], modname) == best]
        shallowest = min(match[0].count(".") for match in nearest)
        return [match for match in nearest if match[0].count(".") == shallowest]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("jobmojito-connection-extras", ConnectionExtras)
    app.add_domain(NearestPythonDomain, override=True)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
