"""``vxds init`` in a monorepo's subfolder: the Git root's pre-commit config, run by pre-commit.

pre-commit reads only the configuration at the root of the repository and runs hooks there;
the real framework (a dev dependency) runs the hooks ``vxds init ml/datasets`` merged into a
root configuration that already had a hook and comments of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import DEMO_RECIPE, GIT_ENV, REPO, Invoke, git

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
ROOT_CONFIG = """\
# the monorepo's own hooks: keep this comment
repos:
  - repo: local
    hooks:
      - id: no-todo   # and this one
        name: no TODO markers
        entry: "TODO"
        language: pygrep
        files: \\.txt$

# run them on commit only
default_stages: [pre-commit]
"""


@pytest.fixture
def mono(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "mono"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".pre-commit-config.yaml").write_text(ROOT_CONFIG)
    (root / "notes.txt").write_text("nothing to do\n")
    monkeypatch.chdir(root)
    return root


def _pre_commit(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **GIT_ENV,
        "HOME": str(tmp_path),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        **{k: v for k, v in os.environ.items() if k in ("TMPDIR", "LANG")},
    }
    return subprocess.run([str(PRE_COMMIT), *args], cwd=root, env=env, capture_output=True, text=True)


def test_the_root_config_gets_the_hooks_with_root_relative_paths(mono: Path, invoke: Invoke) -> None:
    result = invoke("init", "ml/datasets", "--source", "./data")
    assert result.exit_code == 0, result.output
    assert " updated  .pre-commit-config.yaml (the Git root's)\n" in result.stdout
    assert not (mono / "ml/datasets/.pre-commit-config.yaml").exists()
    text = (mono / ".pre-commit-config.yaml").read_text()
    assert text.startswith(ROOT_CONFIG.split("\n# run them")[0])  # every line before is kept
    assert text.endswith("\n# run them on commit only\ndefault_stages: [pre-commit]\n")
    assert "      entry: vxds -C ml/datasets lock --stale --exit-code\n" in text
    assert "      files: ^ml/datasets/(datasets\\.yaml|pyproject\\.toml|recipes/)\n" in text
    assert "next: pre-commit install" in result.stdout
    assert "next: set source" not in result.stdout  # --source was given
    again = invoke("init", "ml/datasets")
    assert " kept  .pre-commit-config.yaml (the Git root's)\n" in again.stdout
    assert (mono / ".pre-commit-config.yaml").read_text() == text


def test_without_a_source_the_next_steps_say_to_set_one(mono: Path, invoke: Invoke) -> None:
    result = invoke("init", "ml/datasets")
    assert result.exit_code == 0, result.output
    assert "next: set source = " in result.stdout
    assert "in [tool.vxds] of ml/datasets/pyproject.toml" in result.stdout


def test_pre_commit_runs_the_merged_hooks_in_the_subfolder(
    mono: Path, invoke: Invoke, tmp_path: Path
) -> None:
    if not PRE_COMMIT.is_file():
        pytest.fail(f"pre-commit is a dev dependency; not found at {PRE_COMMIT}")
    project = mono / "ml/datasets"
    assert invoke("init", "ml/datasets", "--source", "./data").exit_code == 0
    shutil.copytree(REPO / "sample-data/zurich", project / "data")
    (project / "recipes/demo.py").write_text(DEMO_RECIPE)
    assert invoke("-C", "ml/datasets", "new", "demo", "--script", "recipes/demo.py").exit_code == 0
    git(mono, "add", "-A")
    first = _pre_commit(mono, tmp_path, "run", "--all-files")
    assert first.returncode == 1, first.stdout + first.stderr  # vxds-lock wrote the new lock
    assert (project / "locks/demo/1/lock.toml").is_file()
    assert "no TODO markers" in first.stdout  # the monorepo's own hook still runs
    git(mono, "add", "-A")
    second = _pre_commit(mono, tmp_path, "run", "--all-files")
    assert second.returncode == 0, second.stdout + second.stderr
    for name in ("vxds manifest schema", "vxds lock (relock what changed)", "vxds verify (no recipe code)"):
        [line] = [line for line in second.stdout.splitlines() if line.startswith(name)]
        assert line.endswith("Passed"), line
    git(mono, "commit", "-q", "-m", "a vxds project in ml/datasets")
    (mono / "notes.txt").write_text("still nothing\n")  # outside the project: the vxds hooks skip
    git(mono, "add", "-A")
    other = _pre_commit(mono, tmp_path, "run")
    assert other.returncode == 0, other.stdout
    [line] = [line for line in other.stdout.splitlines() if line.startswith("vxds lock")]
    assert line.endswith("Skipped")


def test_a_split_that_comes_out_empty_is_a_warning(mono: Path, invoke: Invoke) -> None:
    """The template's recipe selects type="Volume"; over PNGs every split is empty."""
    assert invoke("init", "--source", "./data").exit_code == 0
    (mono / "data/sub-01").mkdir(parents=True)
    (mono / "data/sub-01/scan.png").write_bytes(b"\x89PNG")
    assert invoke("new", "pictures").exit_code == 0
    result = invoke("lock", "--all")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: pictures@1: splits test, train have no resources; does the source hold what the"
        " recipe asks for (its type and attrs)? 'vxds show' counts what was locked\n"
    )
    full = invoke("lock", "--file", "recipes/pictures.py", "-o", "out")
    assert full.exit_code == 0
    assert "warning: recipes/pictures.py: splits test, train have no resources" in full.stderr


def test_a_flow_style_root_config_is_left_alone_with_a_next_step(mono: Path, invoke: Invoke) -> None:
    (mono / ".pre-commit-config.yaml").write_text("repos: []  # mine\n")
    result = invoke("init", "ml/datasets", "--source", "./data")
    assert result.exit_code == 0
    assert " skipped  .pre-commit-config.yaml (the Git root's)\n" in result.stdout
    assert "next: add the vxds hooks to .pre-commit-config.yaml (the Git root's) by hand" in result.stdout
    assert "next: pre-commit install" not in result.stdout
    assert (mono / ".pre-commit-config.yaml").read_text() == "repos: []  # mine\n"
