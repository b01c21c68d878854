"""``vxds status``: lock state and data drift per dataset version, exit 1 when any needs work."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import T1, Invoke

KEYS = ["viseg_training@1", "viseg_training@2", "all_basel_data@1", "clinical_cohort@1"]


def _columns(stdout: str) -> list[list[str]]:
    return [line.split()[:3] for line in stdout.splitlines()[:-1]]


def test_missing_locks_need_work(project: Path, invoke: Invoke) -> None:
    result = invoke("status")
    assert result.exit_code == 1
    assert _columns(result.stdout) == [["missing", "-", key] for key in KEYS]
    assert result.stdout.splitlines()[-1].startswith("4 of 4 dataset version(s) need work")


def test_fresh_locks_over_the_same_data_are_clean(project: Path, invoke: Invoke) -> None:
    assert invoke("lock", "--all").exit_code == 0
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert _columns(result.stdout) == [["fresh", "same", key] for key in KEYS]
    assert result.stdout.splitlines()[-1] == "clean: 4 dataset version(s)"


def test_a_stale_lock_and_drifted_data_exit_1(project: Path, invoke: Invoke) -> None:
    assert invoke("lock", "--all").exit_code == 0
    recipe = project / "recipes/clinical.py"
    recipe.write_text(recipe.read_text() + "# changed\n")
    stale = invoke("status", "--no-data")
    assert stale.exit_code == 1
    assert _columns(stale.stdout)[-1] == ["stale", "-", "clinical_cohort@1"]
    assert "the recipe script ./recipes/clinical.py changed" in stale.stdout
    assert [c[0] for c in _columns(stale.stdout)[:3]] == ["fresh"] * 3
    recipe.write_text(recipe.read_text().removesuffix("# changed\n"))
    assert invoke("status").exit_code == 0
    sidecar = project / f"{T1}.json"
    sidecar.write_text(sidecar.read_text().replace("}", ', "Extra": 1}', 1))  # the data, not a recipe
    drifted = invoke("status", "--format", "json")
    assert drifted.exit_code == 1
    document = json.loads(drifted.stdout)
    assert document["clean"] is False
    by_key = {f"{d['name']}@{d['version']}": d for d in document["datasets"]}
    assert {k: (d["state"], d["data"]["state"], d["clean"]) for k, d in by_key.items()} == {
        key: ("fresh", "drifted", False) for key in KEYS
    }


def test_status_matches_what_list_data_says(project: Path, invoke: Invoke) -> None:
    assert invoke("lock", "viseg_training@1").exit_code == 0
    listed = json.loads(invoke("list", "--data", "--format", "json").stdout)["datasets"]
    status = json.loads(invoke("status", "--format", "json").stdout)["datasets"]
    assert [{k: v for k, v in d.items() if k != "clean"} for d in status] == listed
    assert [d["clean"] for d in status] == [True, False, False, False]


def test_the_documented_example_is_what_status_prints(project: Path, invoke: Invoke) -> None:
    import shutil

    from tests.helpers import REPO

    assert invoke("lock", "--all").exit_code == 0
    (project / "recipes/clinical.py").write_text((project / "recipes/clinical.py").read_text() + "# c\n")
    shutil.rmtree(project / "locks/all_basel_data")
    page = (REPO / "docs/commands.md").read_text(encoding="utf-8")
    section = page[page.index("## `vxds status") :]
    shown = section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n"))]
    result = invoke("status")
    assert result.exit_code == 1
    assert result.stdout == shown + "\n"


def _merged(project: Path, invoke: Invoke) -> None:
    """``all_basel_data@1`` merged by a real ``git merge`` through vxds' merge driver."""
    import os
    import subprocess
    import sys

    from tests.helpers import GIT_ENV, git

    def commit(message: str) -> None:
        assert invoke("lock", "--all", "-q").exit_code == 0
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", message)

    assert invoke("install").exit_code == 0
    commit("locks and merge driver")
    git(project, "checkout", "-q", "-b", "sidecar")
    sidecar = project / f"{T1}.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "Extra": 1}))
    commit("sidecar edit")
    git(project, "checkout", "-q", "main")
    other = project / "sample-data/basel/sub-BS05/ses-01/anat/sub-BS05_ses-01_T2w.nii.gz"
    other.write_bytes(other.read_bytes() + b"\0")
    commit("new bytes")
    path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    merged = subprocess.run(
        ["git", "merge", "--no-edit", "sidecar"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**GIT_ENV, "PATH": path, "HOME": str(project)},
        check=False,
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr


def test_a_merged_lock_is_shown_to_relock_before_release_and_fails_only_strict(
    project: Path, invoke: Invoke
) -> None:
    """As verify: VX312 is a warning (exit 0), an error with --strict; ``lock --stale`` does
    not relock a merged lock, so ``vxds status || vxds lock --stale`` must not fail on it."""
    _merged(project, invoke)
    reason = "merged by Git, not written by its recipe: relock before release"
    result = invoke("status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line for line in lines if "all_basel_data@1" in line] == [
        f"merged   unknown     all_basel_data@1   {reason}; the lock records no single source snapshot"
    ]
    assert [c[0] for c in _columns(result.stdout)] == ["merged"] * 4  # both sides relocked all four
    assert lines[-1] == "clean: 4 dataset version(s), 4 merged by Git: relock before release"
    verify = invoke("verify", "--no-exec")
    assert verify.exit_code == 0
    assert "VX312" in verify.output
    assert invoke("verify", "--no-exec", "--strict").exit_code == 1
    strict = invoke("status", "--strict", "--format", "json")
    assert strict.exit_code == 1
    document = json.loads(strict.stdout)
    assert document["clean"] is False
    assert [(d["state"], d["clean"]) for d in document["datasets"]] == [("merged", False)] * 4
    assert invoke("lock", "--stale").exit_code == 0
    assert [c[0] for c in _columns(invoke("status", "--no-data").stdout)] == ["merged"] * 4  # not relocked
    assert invoke("lock", "--all", "-q").exit_code == 0
    relocked = invoke("status", "--strict")
    assert relocked.exit_code == 0
    assert relocked.stdout.splitlines()[-1] == "clean: 4 dataset version(s)"
