"""The CI templates (docs/ci/) in a project made by ``vxds init``: every step as a shell runs it.

Installing vxds into a fresh virtual environment is too slow for the suite, so the install
step is checked for what it installs (vxds itself, never the data project, which ``vxds
init`` does not make a Python package), and every other step runs in bash with the current
``vxds`` on PATH, on a pull request branch of a project with a real ``origin`` remote. The
steps that post to GitHub or GitLab (``gh``, ``curl``) need their servers and are not run.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import DEMO_RECIPE, GIT_ENV, REPO, Invoke, commit_all, git

POSTS = ("gh pr comment", "curl ")


def _steps(name: str) -> list[str]:
    """The shell commands of a template, in order (GitHub's ``run:`` steps, GitLab's script)."""
    document = yaml.safe_load((REPO / "docs/ci" / name).read_text(encoding="utf-8"))
    if name == "github-actions.yml":
        return [step["run"] for step in document["jobs"]["diff"]["steps"] if "run" in step]
    return list(document["vxds-diff"]["script"])


def _as_run_here(step: str) -> str:
    """GitHub's expressions for a pull request into main (GitLab's are environment variables)."""
    return step.replace("${{ github.base_ref }}", "main")


@pytest.fixture
def initialised(tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project made by 'vxds init', locked on main, pushed to a real origin, with a branch."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    monkeypatch.chdir(project)
    assert invoke("init", "--source", "./data", "-q").exit_code == 0
    shutil.copytree(REPO / "sample-data/zurich", project / "data")
    (project / "recipes/demo.py").write_text(DEMO_RECIPE)
    assert invoke("new", "demo", "--script", "recipes/demo.py", "-q").exit_code == 0
    assert invoke("lock", "--all", "-q").exit_code == 0
    commit_all(project, "a vxds project")
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    git(project, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(project, "push", "-q", "origin", "main")
    git(project, "fetch", "-q", "origin")
    git(project, "checkout", "-q", "-b", "feature")
    (project / "NOTES.md").write_text("no dataset change\n")
    commit_all(project, "notes")
    return project


def _run(project: Path, step: str) -> subprocess.CompletedProcess[str]:
    env = {
        **GIT_ENV,
        "HOME": str(project.parent),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "GITHUB_STEP_SUMMARY": str(project.parent / "summary.md"),
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        **{k: v for k, v in os.environ.items() if k in ("TMPDIR", "LANG")},
    }
    return subprocess.run(["bash", "-e", "-c", step], cwd=project, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_install_step_installs_vxds_not_the_project(name: str) -> None:
    [install] = [step for step in _steps(name) if step.lstrip().startswith("pip install")]
    words = shlex.split(install, comments=True)
    assert words[:2] == ["pip", "install"]
    assert words[2:] == ["vxds"]  # not -e . (the data project is no Python package)


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_other_steps_run_in_a_project_made_by_init(initialised: Path, name: str) -> None:
    steps = [_as_run_here(s) for s in _steps(name) if not s.lstrip().startswith("pip install")]
    run_here = [s for s in steps if not any(post in s for post in POSTS)]
    assert len(run_here) == len(steps) - 1  # only the step that posts the comment is left out
    for step in run_here:
        result = _run(initialised, step)
        assert result.returncode == 0, (step, result.stdout, result.stderr)
    assert "vxds diff" in (initialised / "vxds-diff.md").read_text()
    recipe = initialised / "recipes/demo.py"
    recipe.write_text(recipe.read_text() + "# changed without a relock\n")
    commit_all(initialised, "recipe changed, not relocked")
    verify = next(s for s in run_here if "vxds verify" in s)
    failed = _run(initialised, verify)
    assert failed.returncode == 1
    assert "VX203" in failed.stdout
