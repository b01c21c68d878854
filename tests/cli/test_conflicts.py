"""Merges and conflicts named: ``merged`` in ``vxds list``, conflict markers as VX313, and a
merge driver that says so when ``vxds`` is not on PATH. Real ``git merge`` in real repos."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.test_merge_driver import BASEL, LOCK, OTHER, merge
from tests.helpers import GIT_ENV, Invoke, git

T1_JSON = "basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.json"


def _edit(root: Path, path: str, key: str, value: object) -> None:
    file = root / path
    if path.endswith(".json"):
        file.write_text(json.dumps({**json.loads(file.read_text()), key: value}))
    else:
        file.write_bytes(file.read_bytes() + str(value).encode())


def _commit(root: Path, invoke: Invoke, message: str) -> None:
    assert invoke("lock", "all_basel_data", "-q").exit_code == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def _branches(root: Path, invoke: Invoke, theirs: tuple[str, object], ours: tuple[str, object]) -> None:
    """``theirs`` and ``main`` each change all_basel_data@1 (path, value) from one base."""
    assert invoke("install", "-q").exit_code == 0
    _commit(root, invoke, "locks and merge driver")
    git(root, "checkout", "-q", "-b", "theirs")
    _edit(root, theirs[0], "Extra", theirs[1])
    _commit(root, invoke, "theirs")
    git(root, "checkout", "-q", "main")
    _edit(root, ours[0], "Extra", ours[1])
    _commit(root, invoke, "ours")


def _states(invoke: Invoke) -> dict[str, tuple[str, list[str]]]:
    doc = json.loads(invoke("list", "--format", "json").output)
    return {f"{d['name']}@{d['version']}": (d["state"], d["reasons"]) for d in doc["datasets"]}


def test_a_lock_merged_by_the_driver_is_merged_in_list(project: Path, invoke: Invoke) -> None:
    _branches(project, invoke, theirs=(BASEL, 1), ours=(OTHER, "\0"))
    assert merge(project, "theirs").returncode == 0
    state, reasons = _states(invoke)["all_basel_data@1"]
    assert (state, reasons) == ("merged", ["merged by Git, not written by its recipe: relock before release"])
    assert "all_basel_data   1        merged" in invoke("list").output
    assert invoke("lock", "all_basel_data", "-q").exit_code == 0
    assert _states(invoke)["all_basel_data@1"] == ("fresh", [])


def test_conflict_markers_are_one_finding_each_not_json_errors(project: Path, invoke: Invoke) -> None:
    _branches(project, invoke, theirs=(BASEL, "theirs"), ours=(BASEL, "ours"))
    assert merge(project, "theirs").returncode == 1
    split = (project / LOCK / "resources.all.jsonl").read_bytes().split(b"\n")
    starts = [n for n, line in enumerate(split, start=1) if line.startswith(b"<<<<<<<")]
    assert len(starts) == 2
    result = invoke("verify", "--no-exec", "all_basel_data")
    assert result.exit_code == 1
    assert "VX305" not in result.output
    for line in starts:
        assert (
            f"  error   VX313 {LOCK}/resources.all.jsonl:{line}: unresolved merge conflict at line {line}: "
            "resolve it or relock\n"
        ) in result.output
    state, reasons = _states(invoke)["all_basel_data@1"]
    assert state == "corrupt"
    assert reasons == [
        f"resources.all.jsonl: unresolved merge conflict at line {line}: resolve it or relock "
        "('vxds lock' rewrites it)"
        for line in starts
    ]
    assert invoke("lock", "all_basel_data", "-q").exit_code == 0  # relocking resolves it
    assert invoke("verify", "--no-exec", "all_basel_data").exit_code == 0


def test_without_vxds_on_path_the_driver_says_so(project: Path, invoke: Invoke) -> None:
    _branches(project, invoke, theirs=(BASEL, 1), ours=(OTHER, "\0"))
    env = {**GIT_ENV, "PATH": "/usr/bin:/bin", "HOME": str(project)}
    assert subprocess.run(["sh", "-c", "command -v vxds"], env=env, check=False).returncode != 0
    result = subprocess.run(
        ["git", "merge", "--no-edit", "theirs"], cwd=project, capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    for name in ("lock.toml", "resources.all.jsonl"):
        assert (
            f"vxds merge driver: 'vxds' is not on PATH (activate the project's environment), so "
            f"'{LOCK}/{name}' was merged as plain text and left in conflict; resolve it, or run "
            "'vxds lock' where vxds is found\n"
        ) in result.stderr
    assert f"UU {LOCK}/lock.toml" in git(project, "status", "--porcelain")
    verified = invoke("verify", "--no-exec", "all_basel_data")
    assert verified.exit_code == 1
    assert f"VX313 {LOCK}/lock.toml:" in verified.output
    assert "unresolved merge conflict at line" in verified.output
    assert invoke("lock", "all_basel_data", "-q").exit_code == 0
    assert invoke("verify", "--no-exec", "all_basel_data").exit_code == 0
