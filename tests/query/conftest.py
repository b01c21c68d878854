"""Fixtures for query tests: the example project with its committed locks, in a real Git repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import REPO, Invoke, git
from vxds.cli.main import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project (manifest, recipes, sample data, locks), committed and tagged v1."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("datasets.yaml", ".gitattributes"):
        shutil.copy(REPO / name, root / name)
    for name in ("recipes", "sample-data", "locks"):
        shutil.copytree(REPO / name, root / name)
    (root / "pyproject.toml").write_text(
        '[tool.vxds]\nmanifest = "datasets.yaml"\nlocks = "locks"\nsource = "./sample-data"\n'
    )
    (root / ".gitignore").write_text(".vxds/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "example project")
    git(root, "tag", "v1")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def invoke() -> Invoke:
    """Run the CLI in-process; exceptions other than exits propagate."""

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return run
