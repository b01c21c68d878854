"""The package's layering (docs/architecture.md), read from the import statements themselves.

Every module of ``vxds/`` is parsed and every import counts: at module level, inside a
function, under ``if TYPE_CHECKING:``. Relative imports are resolved, and ``from vxds import
hashing`` counts as an import of ``vxds.hashing``. Importing the root package ``vxds`` itself
(``from vxds import __version__``) is no dependency: Python has imported it already.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vxds"

# Each tier may import the tiers before it; the packages of one tier import none of each
# other. A module belongs to its top-level package (``vxds.sources.folder.tree`` is
# ``sources``), except ``vxds.git.repo``: the Git wrapper the locks read through sits below
# them, and the rest of ``vxds.git`` (history, published versions, the merge driver) above.
TIERS: list[set[str]] = [
    {"errors", "schemas", "templates"},  # errors; data files as packages
    {"fs", "progress", "executor", "filehash"},  # executor: where per-object work runs (threads, Dask)
    {"hashing"},
    {"resource"},
    {"project", "sources", "git.repo"},
    {"locks"},
    {"report", "query"},  # query reads locks (and Git through git.repo) for DuckDB
    {"git"},
    {"recipes", "store", "registry"},  # registry: locks copied from another repository
    {"verify"},
    {"materialize"},
    {"api"},  # vxds.api and the root package's lazy public names
    {"cli"},  # vxds.cli and vxds.__main__ (``python -m vxds``)
]
RANK = {unit: rank for rank, tier in enumerate(TIERS) for unit in tier}
CLI_ENTRY = {"vxds.__main__"}  # outside vxds/cli/, but the command line's own entry point
GIT_FROM_LOCKS = {"vxds.locks.refs", "vxds.locks.sides"}  # the lock modules that read Git


class Import(NamedTuple):
    module: str  # the importing module, e.g. vxds.locks.refs
    target: str  # the imported module (or name), e.g. vxds.git.repo, click
    line: int
    top: bool  # at module level (not inside a function or class)

    def __str__(self) -> str:
        where = "module level" if self.top else "inside a function"
        return f"{self.module} (line {self.line}, {where}) imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), module, package)


def _imports_in(text: str, module: str, package: str) -> Iterator[Import]:
    """The imports of ``module``'s source ``text``; relative ones resolve against ``package``."""
    tree = ast.parse(text)
    nested = {
        id(node)
        for scope in ast.walk(tree)
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
        for node in ast.walk(scope)
        if node is not scope
    }
    for node in ast.walk(tree):
        top = id(node) not in nested
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, top)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:  # ``from vxds import hashing`` imports vxds.hashing
                submodule = f"{base}.{alias.name}"
                yield Import(module, submodule if _is_module(submodule) else base, node.lineno, top)


def _all_imports() -> list[Import]:
    return [found for path in sorted(PACKAGE.rglob("*.py")) for found in _imports(path)]


def unit(module: str) -> str:
    """The package of the layering a vxds module belongs to (see ``TIERS``)."""
    if module in CLI_ENTRY:
        return "cli"
    if module == "vxds":
        return "api"
    parts = module.split(".")
    if parts[1] == "git" and len(parts) > 2 and parts[2] == "repo":
        return "git.repo"
    return parts[1]


def _is_cli(name: str) -> bool:
    return name == "click" or name.startswith(("click.", "vxds.cli.")) or name == "vxds.cli"


# --- the rules ---------------------------------------------------------------------------


def test_only_the_command_line_imports_click_or_vxds_cli() -> None:
    found = [str(imp) for imp in _all_imports() if _is_cli(imp.target) and unit(imp.module) != "cli"]
    assert found == [], "the core must not import the command line:\n" + "\n".join(found)


def test_every_package_has_a_place_in_the_layering() -> None:
    units = {unit(_module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert units - set(RANK) == set(), "add the new package to TIERS and to docs/architecture.md"


def test_imports_run_down_the_tiers_only() -> None:
    found = []
    for imp in _all_imports():
        if not imp.target.startswith("vxds."):  # the root package, or a library
            continue
        source, target = unit(imp.module), unit(imp.target)
        if source != target and RANK.get(target, len(TIERS)) >= RANK.get(source, -1):
            found.append(f"{imp}: {source} may not import {target}")
    assert found == [], "imports against the layering of docs/architecture.md:\n" + "\n".join(found)


def test_only_locks_refs_and_sides_read_git() -> None:
    found = [
        str(imp)
        for imp in _all_imports()
        if imp.module.startswith("vxds.locks")
        and imp.target.startswith("vxds.git")
        and (imp.module not in GIT_FROM_LOCKS or unit(imp.target) != "git.repo")
    ]
    message = "vxds.locks reads Git through vxds.git.repo, in refs.py and sides.py only:\n"
    assert found == [], message + "\n".join(found)


def test_the_core_never_prints_or_exits() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if unit(module) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _called(node.func) in {"print", "sys.exit", "exit", "quit"}:
                found.append(f"{module} line {node.lineno}: {_called(node.func)}()")
    assert found == [], "only the command line prints or exits:\n" + "\n".join(found)


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


# --- the checker itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("import click", ["click"]),
        ("def f():\n    from vxds.cli.main import cli", ["vxds.cli.main"]),
        ("class C:\n    def f(self):\n        import click.testing", ["click.testing"]),
        ("from vxds import hashing, __version__", ["vxds.hashing", "vxds"]),
        ("from ...git import repo", ["vxds.git.repo"]),
        ("from .. import base", ["vxds.sources.base"]),
        ("from . import tree", ["vxds.sources.folder.tree"]),
        ("from .tree import TreeBuilder", ["vxds.sources.folder.tree"]),
        ("if TYPE_CHECKING:\n    from vxds.cli import options", ["vxds.cli.options"]),
    ],
)
def test_every_import_is_seen(text: str, expected: list[str]) -> None:
    found = list(_imports_in(text, "vxds.sources.folder.probe", "vxds.sources.folder"))
    assert [imp.target for imp in found] == expected
    assert [imp.top for imp in found] == ["def " not in text] * len(expected)


def test_the_git_wrapper_sits_below_the_locks_and_the_rest_of_git_above() -> None:
    assert (unit("vxds.locks.status"), unit("vxds.git.history"), unit("vxds.git.repo")) == (
        "locks",
        "git",
        "git.repo",
    )
    assert RANK["locks"] < RANK["git"]
    assert RANK["git.repo"] < RANK["locks"]
    assert (unit("vxds.__main__"), unit("vxds")) == ("cli", "api")
