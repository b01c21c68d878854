"""``vxds bump`` and frozen versions: from a published version to the next, every check green."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import GIT_ENV, REPO, Invoke, commit_all, git

BASEL_V1 = """\
- name: all_basel_data
  version: 1
  description: Everything from the Basel trial, images, sidecars, tables and clinical rows.
  script_location: ./recipes/basel.py
"""


def _published(project: Path, invoke: Invoke) -> dict[str, bytes]:
    """Every lock on main; all_basel_data@1's files as published."""
    assert invoke("lock", "--all").exit_code == 0
    commit_all(project, "locks")
    folder = project / "locks/all_basel_data/1"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_bump_freezes_the_version_and_adds_the_next_keeping_comments(project: Path, invoke: Invoke) -> None:
    manifest = project / "datasets.yaml"
    text = manifest.read_text().replace(
        "  script_location: ./recipes/basel.py\n",
        "  script_location: ./recipes/basel.py  # the trial's recipe\n  params: {site: basel}\n",
    )
    manifest.write_text(text)
    result = invoke("bump", "all_basel_data")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "  frozen  all_basel_data@1 in datasets.yaml",
        "   added  all_basel_data@2 in datasets.yaml",
        "next: change the recipe, then 'vxds lock all_basel_data@2'",
    ]
    after = manifest.read_text()
    assert after.startswith(text.split("- name: all_basel_data")[0])  # what comes before is untouched
    assert (
        "- name: all_basel_data\n  version: 1\n  frozen: true\n"
        "  description: Everything from the Basel trial, images, sidecars, tables and clinical rows.\n"
        "  script_location: ./recipes/basel.py  # the trial's recipe\n  params: {site: basel}\n\n"
        "- name: all_basel_data\n  version: 2\n"
        "  description: Everything from the Basel trial, images, sidecars, tables and clinical rows.\n"
        "  script_location: ./recipes/basel.py  # the trial's recipe\n  params: {site: basel}\n\n"
        "- name: clinical_cohort\n"
    ) in after
    assert after.startswith("# vxds manifest")


def test_bump_of_an_unknown_dataset_is_exit_2(project: Path, invoke: Invoke) -> None:
    result = invoke("bump", "nosuch")
    assert result.exit_code == 2
    assert "no dataset named 'nosuch'" in result.output
    assert BASEL_V1 in (project / "datasets.yaml").read_text()


def test_published_to_next_version_every_check_green(project: Path, invoke: Invoke) -> None:
    """The path docs/checks.md documents: bump, change the recipe, lock, commit, verify."""
    v1 = _published(project, invoke)
    git(project, "checkout", "-q", "-b", "next")
    assert invoke("bump", "all_basel_data").exit_code == 0
    recipe = project / "recipes/basel.py"
    recipe.write_text(recipe.read_text() + "\n# a changed recipe\n")
    locked = invoke("lock", "--all")
    assert locked.exit_code == 0, locked.output
    assert "skipped  all_basel_data@1: frozen (frozen: true in the manifest), its lock is left as it is" in (
        locked.output
    )
    assert "written  all_basel_data@2: all 102  (102 added)" in locked.output
    commit_all(project, "all_basel_data@2: the changed recipe")
    verified = invoke("verify", "--no-exec", "--base", "main")
    assert verified.exit_code == 0, verified.output
    check = invoke("lock", "--all", "--check")
    assert check.exit_code == 0, check.output
    folder = project / "locks/all_basel_data/1"
    assert {p.name: p.read_bytes() for p in sorted(folder.iterdir())} == v1
    states = {
        f"{d['name']}@{d['version']}": d["state"]
        for d in json.loads(invoke("list", "--format", "json").output)["datasets"]
    }
    assert states["all_basel_data@1"] == "frozen"
    assert states["all_basel_data@2"] == "fresh"


def test_a_frozen_version_is_never_relocked(project: Path, invoke: Invoke) -> None:
    _published(project, invoke)
    assert invoke("bump", "all_basel_data").exit_code == 0
    result = invoke("lock", "all_basel_data@1")
    assert result.exit_code == 2
    assert result.output == (
        "error: all_basel_data@1 is frozen ('frozen: true' at datasets.yaml:19): its lock is kept as "
        "published and never rewritten\nhint: lock the next version instead ('vxds lock all_basel_data@2')\n"
    )
    doc = json.loads(invoke("lock", "--all", "--dry-run", "--format", "json").output)
    assert {d["name"] + "@" + str(d["version"]): d["status"] for d in doc["datasets"]}[
        "all_basel_data@1"
    ] == ("frozen")


def test_a_frozen_lock_that_is_missing_is_restored_from_git_not_relocked(
    project: Path, invoke: Invoke
) -> None:
    _published(project, invoke)
    assert invoke("bump", "all_basel_data").exit_code == 0
    shutil.rmtree(project / "locks/all_basel_data/1")
    result = invoke("verify", "--no-exec", "all_basel_data@1")
    assert result.exit_code == 1
    assert (
        "VX201 locks/all_basel_data/1: no lock at locks/all_basel_data/1; all_basel_data@1 is frozen: "
        "restore its lock from Git ('git checkout HEAD -- locks/all_basel_data/1')"
    ) in result.output
    assert "vxds lock all_basel_data@1" not in result.output


@pytest.mark.parametrize("edit", ["rewrite", "delete"])
def test_verify_fails_when_a_frozen_lock_changed_against_base(
    project: Path, invoke: Invoke, edit: str
) -> None:
    _published(project, invoke)
    if edit == "rewrite":  # only the snapshot differs: VX205 lets that pass, a frozen lock does not
        (project / "sample-data/unrelated.txt").write_text("x")
        assert invoke("lock", "all_basel_data@1").exit_code == 0
    else:
        (project / "locks/all_basel_data/1/lock.toml").unlink()
    assert invoke("bump", "all_basel_data").exit_code == 0
    result = invoke("verify", "--no-exec", "--base", "main", "all_basel_data@1")
    assert result.exit_code == 1
    assert "VX207" in result.output
    assert "'git checkout main -- locks/all_basel_data/1'" in result.output


def test_lock_warns_before_rewriting_a_lock_published_upstream(
    project: Path, invoke: Invoke, tmp_path: Path
) -> None:
    _published(project, invoke)
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    git(project, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(project, "push", "-q", "origin", "main")
    git(project, "checkout", "-q", "-b", "next")
    recipe = project / "recipes/basel.py"
    recipe.write_text(recipe.read_text() + "\n# a changed recipe\n")
    result = invoke("lock", "all_basel_data")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: all_basel_data@1 is published at origin/main and this rewrites its lock; to keep it, "
        "'git checkout origin/main -- locks/all_basel_data/1' and 'vxds bump all_basel_data' "
        "(the change becomes all_basel_data@2)\n"
    )
    assert invoke("lock", "all_basel_data").stderr == ""  # unchanged now: nothing is rewritten
    git(project, "checkout", "-q", "origin/main", "--", "locks/all_basel_data/1")
    assert invoke("bump", "all_basel_data").exit_code == 0
    relocked = invoke("lock", "--all")
    assert (relocked.exit_code, relocked.stderr) == (0, "")
    assert invoke("verify", "--no-exec", "--base", "origin/main").exit_code == 0


def _docs_block(page: Path, heading: str) -> str:
    text = page.read_text(encoding="utf-8")
    section = text[text.index(f"\n{heading}\n") :]
    return section[section.index("```sh\n") + 6 : section.index("\n```\n")]


def test_the_documented_path_runs_as_written(project: Path, invoke: Invoke) -> None:
    """docs/checks.md's block, run by bash with the real ``vxds`` on PATH."""
    v1 = _published(project, invoke)
    git(project, "checkout", "-q", "-b", "next")
    block = _docs_block(REPO / "docs/checks.md", "## From a published version to the next")
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    run = subprocess.run(["bash", "-e", "-c", block], cwd=project, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "skipped  all_basel_data@1: frozen" in run.stdout
    assert "verified 5 locks" in run.stdout
    folder = project / "locks/all_basel_data/1"
    assert {p.name: p.read_bytes() for p in sorted(folder.iterdir())} == v1
    assert git(project, "status", "--porcelain") == ""
