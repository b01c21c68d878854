"""The real pre-commit framework runs vxds' hooks from this checkout (.pre-commit-hooks.yaml).

The hook repository is a committed copy of the working tree; pre-commit installs it into its
own environment once per test session (PRE_COMMIT_HOME is shared), so later runs are quick.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import DEMO_MANIFEST, DEMO_RECIPE
from vxds.locks.splits import Split
from vxds.locks.store import Lock, read_lock, write_lock
from vxds.project.config import load_config
from vxds.project.manifest import load_manifest
from vxds.recipes.resolver import Resolver

REPO = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
LOCK = Path("locks/demo/1")


def _env(home: Path, pre_commit_home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_")) or k in ("TMPDIR", "LANG")}
    return {
        **keep,
        **IDENTITY,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PRE_COMMIT_HOME": str(pre_commit_home),
    }


def _git(cwd: Path, *args: str) -> str:
    env = {**IDENTITY, "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A committed copy of this checkout's files, its commit, and a shared PRE_COMMIT_HOME."""
    if not PRE_COMMIT.is_file():
        pytest.fail(f"pre-commit is a dev dependency; not found at {PRE_COMMIT}")
    copy = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file() and not rel.startswith(("sample-data/", "locks/", "bench/")):
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / rel)
    _git(copy, "init", "-q", "-b", "main")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "vxds")
    return copy, _git(copy, "rev-parse", "HEAD").strip(), tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def repo(project: Path, hook_repo: tuple[Path, str, Path]) -> Iterator[Path]:
    """The demo project, locked and committed, using the hooks at ``repo: <copy>``."""
    url, rev, _ = hook_repo
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {url}\n    rev: {rev}\n    hooks:\n"
        "      - id: vxds-manifest\n      - id: vxds-lock\n      - id: vxds-verify\n"
    )
    (project / ".gitignore").write_text(".vxds/\n")
    config = load_config(project)
    entry = load_manifest(config.manifest, default_source=config.source).find("demo")
    write_lock(Resolver(config).resolve(entry), project / LOCK)
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "demo")
    return project


def _run(repo: Path, hook_repo: tuple[Path, str, Path], *hooks: str) -> subprocess.CompletedProcess[str]:
    env = _env(repo, hook_repo[2])
    return subprocess.run(
        [str(PRE_COMMIT), "run", *hooks, "--all-files"], cwd=repo, capture_output=True, text=True, env=env
    )


def test_hooks_pass_on_a_clean_repository(repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    result = _run(repo, hook_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("vxds manifest schema", "vxds lock (relock what changed)", "vxds verify (no recipe code)"):
        assert name in result.stdout


def test_stale_lock_fails_then_vxds_lock_relocks_it(repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    recipe = repo / "recipes" / "demo.py"
    recipe.write_text(DEMO_RECIPE.replace('test_subject="02"', 'test_subject="03"'))
    verify = _run(repo, hook_repo, "vxds-verify")
    assert verify.returncode == 1
    assert "VX203 locks/demo/1/lock.toml: stale: the recipe script ./recipes/demo.py changed" in verify.stdout
    relock = _run(repo, hook_repo, "vxds-lock")
    assert relock.returncode == 1
    assert "written  demo@1: test 1, train 2" in relock.stdout
    assert "locks/demo/1" in _git(repo, "status", "--porcelain")
    assert _run(repo, hook_repo).returncode == 0


def test_corrupted_lock_line_fails(repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    path = repo / LOCK / "resources.train.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"size":', b'"size":9', 1))
    result = _run(repo, hook_repo, "vxds-verify")
    assert result.returncode == 1
    assert (
        "VX304 locks/demo/1/resources.train.jsonl: resources.train.jsonl does not match its digest"
        in result.stdout
    )


def test_leak_fails(repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    lock = read_lock(repo / LOCK)
    train = list(lock.splits["train"].lines())
    test = sorted([*lock.splits["test"].lines(), train[0]])
    splits = {"train": Split.from_lines(train), "test": Split.from_lines(test)}
    header = dataclasses.replace(lock.header, splits={n: (s.count, s.digest) for n, s in splits.items()})
    shutil.rmtree(repo / LOCK)
    write_lock(Lock(header, splits), repo / LOCK)
    result = _run(repo, hook_repo, "vxds-verify")
    assert result.returncode == 1
    assert "VX401" in result.stdout
    assert "VX402" in result.stdout


def test_invalid_manifest_fails_the_schema_hook(repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    (repo / "datasets.yaml").write_text(DEMO_MANIFEST.replace("version: 1", "version: first"))
    result = _run(repo, hook_repo, "vxds-manifest")
    assert result.returncode == 1
    assert "VX101 datasets.yaml:2: dataset 'demo': field 'version' must be an integer" in result.stdout


def test_the_config_vxds_init_writes_runs_the_same_hooks(
    project: Path, hook_repo: tuple[Path, str, Path]
) -> None:
    from vxds.templates import read

    (project / ".pre-commit-config.yaml").write_text(read("pre-commit-config.yaml.txt"))
    (project / ".gitignore").write_text(".vxds/\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "demo")
    first = _run(project, hook_repo)
    assert first.returncode == 1, first.stdout  # no lock yet: vxds-lock writes it and stops the commit
    assert "written  demo@1: test 1, train 2  (3 added)" in first.stdout
    assert (project / LOCK / "lock.toml").is_file()
    _git(project, "add", "-A")
    again = _run(project, hook_repo)
    assert again.returncode == 0, again.stdout


def test_the_documented_config_with_a_clone_beside_runs_after_autoupdate(
    project: Path, hook_repo: tuple[Path, str, Path]
) -> None:
    """docs/pre-commit.md's ``.pre-commit-config.yaml``, verbatim, with a clone of vxds at
    ``../vxds``: pre-commit warns about ``rev: HEAD``, ``autoupdate`` pins the clone's sha (it
    has no tags), and the hooks then run, the pre-push one included."""
    page = (REPO / "docs/pre-commit.md").read_text(encoding="utf-8")
    start = page.index("```yaml\n# .pre-commit-config.yaml\n") + len("```yaml\n")
    documented = page[start : page.index("```\n", start)]
    copy, rev, home = hook_repo
    _git(project.parent, "clone", "-q", str(copy), "vxds")
    (project / ".pre-commit-config.yaml").write_text(documented)
    (project / ".gitignore").write_text(".vxds/\n")
    config = load_config(project)
    entry = load_manifest(config.manifest, default_source=config.source).find("demo")
    write_lock(Resolver(config).resolve(entry), project / LOCK)
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "demo")
    env = _env(project, home)
    updated = subprocess.run(
        [str(PRE_COMMIT), "autoupdate"], cwd=project, capture_output=True, text=True, env=env, check=False
    )
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "appears to be a mutable reference" in updated.stdout + updated.stderr
    pinned = (project / ".pre-commit-config.yaml").read_text()
    assert pinned == documented.replace("rev: HEAD  #", f"rev: {rev}  #")
    result = _run(project, hook_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mutable reference" not in result.stdout + result.stderr
    for name in ("vxds manifest schema", "vxds lock (relock what changed)", "vxds verify (no recipe code)"):
        assert name in result.stdout
    pushed = subprocess.run(
        [str(PRE_COMMIT), "run", "--hook-stage", "pre-push", "--all-files"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "vxds push check (every locked byte in the store)" in pushed.stdout
