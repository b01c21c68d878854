"""A locked project in a Git repository, and a store beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import commit_all, git
from vxds.cli.main import cli


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["-C", str(root), *args] if args[0] != "-C" else list(args), catch_exceptions=False
    )


def vxds(root: Path, *args: str) -> Result:
    """``vxds ARGS`` in the project ``root`` (``--root`` given after the command)."""
    return CliRunner().invoke(cli, [*args, "--root", str(root)], catch_exceptions=False)


def objects(store: Path) -> list[str]:
    """The store's object files, as ``ab/cdef…`` (temporary files of writes excluded)."""
    top = store / "blake3"
    return sorted(
        p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


@pytest.fixture
def locked(project: Path) -> Path:
    """The demo project, locked and committed on ``main``."""
    git(project, "init", "-q", "-b", "main")
    result = vxds(project, "lock", "--all")
    assert result.exit_code == 0, result.output
    commit_all(project, "lock demo")
    return project
