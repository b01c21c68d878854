"""Fixtures for CLI tests: a copy of the repository's example project in a real Git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import EXAMPLE_TOOL, REMOVED_T2, T1, Invoke, commit_all, example_project, git
from vxds.cli.main import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project (manifest, recipes, sample data, [tool.vxds]) committed in Git."""
    pyproject = '[project]\nname = "example"  # a comment to keep\n\n' + EXAMPLE_TOOL
    root = example_project(tmp_path / "project", pyproject=pyproject, locks=False)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def invoke() -> Invoke:
    """Run the CLI in-process; exceptions other than exits propagate."""

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def history(project: Path, invoke: Invoke) -> Path:
    """Two commits of locks: v1 as generated, then a sidecar edit, a new byte and a removal."""
    assert invoke("lock", "--all").exit_code == 0
    commit_all(project, "locks")
    git(project, "tag", "v1")
    sidecar = project / f"{T1}.json"
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "Manufacturer": "Other"}))  # attrs only: metadata
    t2 = project / "sample-data/basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz"
    t2.write_bytes(t2.read_bytes() + b"\0")  # new bytes: changed
    (project / REMOVED_T2).unlink()
    assert invoke("lock", "--all").exit_code == 0
    commit_all(project, "data changed")
    return project
