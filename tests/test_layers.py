"""The layers of shared/DESIGN.md stay true: each imports only its own layer and those below.

    app > graphql_schema > resolvers > db > domain

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions. The
domain is pure: it may import only the standard library's computing modules listed below,
never I/O, a framework or a database driver.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["domain", "db", "resolvers", "graphql_schema", "app"]
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}
# Below, but still out of bounds: GraphQL types wrap domain records and never see SQL or
# rows; they reach the data only through resolvers.
SKIPS = {"graphql_schema": {"db"}}
# What the domain may import besides itself: computing, not I/O (zoneinfo reads the
# system's tz database, the one read the calendar rules cannot do without).
DOMAIN_STDLIB = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "itertools",
    "math",
    "re",
    "statistics",
    "typing",
    "zoneinfo",
}


def _modules(layer: str, root: Path) -> list[Path]:
    return sorted(path for path in (root / layer).rglob("*.py") if "migrations" not in path.parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _violations(layer: str, root: Path = ROOT) -> list[str]:
    problems = []
    for path in _modules(layer, root):
        where = path.relative_to(root)
        for line, name in _imports(path, root):
            top = name.split(".")[0]
            if top in RANK and RANK[top] > RANK[layer]:
                problems.append(f"{where}:{line} imports {name} (upward: {layer} < {top})")
            if top in SKIPS.get(layer, ()):
                problems.append(f"{where}:{line} imports {name} ({layer} must not reach {top})")
            if layer == "domain" and top not in RANK and top not in DOMAIN_STDLIB:
                problems.append(f"{where}:{line} imports {name} (domain/ must stay pure)")
    return problems


@pytest.mark.parametrize("layer", LAYERS, ids=LAYERS)
def test_a_layer_imports_only_itself_and_the_layers_below(layer):
    assert _violations(layer) == []


def test_the_walk_sees_imports_under_type_checking_and_in_functions(tmp_path):
    # The check is only as good as the walk: prove it finds the hidden kinds of import.
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "probe.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app.settings import Settings\n"
        "def f():\n    from resolvers.context import Context\n"
        "from . import tables\n",
        encoding="utf-8",
    )
    problems = _violations("db", tmp_path)
    assert any("app.settings" in problem for problem in problems)
    assert any("resolvers.context" in problem for problem in problems)
    assert len(problems) == 2  # the relative import of its own layer is fine


def test_the_domain_refuses_io_and_frameworks(tmp_path):
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "probe.py").write_text(
        "import os\nfrom sqlalchemy import select\nfrom datetime import UTC\n", encoding="utf-8"
    )
    problems = _violations("domain", tmp_path)
    assert any("imports os" in problem for problem in problems)
    assert any("imports sqlalchemy" in problem for problem in problems)
    assert len(problems) == 2
