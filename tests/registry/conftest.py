"""Fixtures for registry tests: this repository's sample layout as a registry behind a bare
repository, and a consumer project in its own Git repository."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import REPO, Invoke, commit_all, git
from vxds.cli.main import cli
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock, read_lock, write_lock


class Registry:
    """A registry's working repository (``work``) that pushes to a bare one (``bare``)."""

    def __init__(self, root: Path) -> None:
        self.work, self.bare = root / "registry", root / "registry.git"

    def push(self) -> str:
        git(self.work, "push", "-q", str(self.bare), "main", "--tags")
        return git(self.work, "rev-parse", "HEAD").strip()

    def drop_last(self, name: str, version: int, split: str) -> str:
        """Commit the lock of ``name@version`` without its split's last resource; push it."""
        folder = self.work / "locks" / name / str(version)
        lock = read_lock(folder, deep=True)
        lines = list(lock.splits[split].lines())[:-1]
        splits = {**lock.splits, split: Split.from_lines(lines)}
        counts = {s: (sum(1 for _ in c.lines()), c.content_digest) for s, c in splits.items()}
        header = replace(lock.header, splits=counts, shards=header_shards(splits))
        write_lock(Lock(header, splits), folder)
        commit_all(self.work, f"drop the last {split} resource of {name}@{version}")
        return self.push()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """The sample layout (manifest, recipes, committed locks) committed, tagged v1, pushed."""
    reg = Registry(tmp_path)
    reg.work.mkdir()
    for name in ("datasets.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, reg.work / name)
    for name in ("recipes", "locks"):
        shutil.copytree(REPO / name, reg.work / name)
    git(reg.work, "init", "-q", "-b", "main")
    commit_all(reg.work, "registry")
    git(reg.work, "tag", "v1")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(reg.bare))
    reg.push()
    return reg


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A training project with an empty manifest (a comment to keep) in its own Git repo."""
    root = tmp_path / "training"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.vxds]\nmanifest = "datasets.yaml"\nlocks = "locks"\n')
    (root / "datasets.yaml").write_text("# training datasets, imported from the registry\n\n")
    (root / ".gitignore").write_text(".vxds/\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "training project")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def invoke() -> Invoke:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run
