"""Fixtures for query tests: the example project with its committed locks, in a real Git repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import EXAMPLE_TOOL, Invoke, example_project, git
from vxds.cli.main import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project (manifest, recipes, sample data, locks), committed and tagged v1."""
    root = example_project(tmp_path / "project", pyproject=EXAMPLE_TOOL, locks=True)
    git(root, "tag", "v1")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def invoke() -> Invoke:
    """Run the CLI in-process; exceptions other than exits propagate."""

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return run
