"""``vxds diff`` on a real Git repository: revisions, versions, paths, formats, bad input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, Invoke, commit_all, git


def _json(invoke: Invoke, *args: str) -> dict:
    result = invoke("diff", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _dataset(doc: dict, name: str) -> dict:
    return next(d for d in doc["datasets"] if d["name"] == name)


def test_two_revisions(history: Path, invoke: Invoke) -> None:
    doc = _json(invoke, "v1", "HEAD")
    assert (doc["old"], doc["new"], doc["differs"]) == ("v1", "HEAD", True)
    basel = _dataset(doc, "all_basel_data")
    assert basel["status"] == "changed"
    assert basel["old_version"] == basel["new_version"] == 1
    kinds = {(c["kind"], c["id"]) for c in basel["changes"]}
    assert ("metadata", "basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz") in kinds
    assert ("changed", "basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz") in kinds
    assert ("removed", "basel/sub-BS08/ses-01/anat/sub-BS08_ses-01_T2w.nii.gz") in kinds
    metadata = next(c for c in basel["changes"] if c["kind"] == "metadata")
    assert metadata["fields"] == ["attrs.Manufacturer"]
    assert metadata["old"]["hash"] == metadata["new"]["hash"]
    assert basel["summary"]["changed"] == 2
    assert basel["summary"]["removed"] >= 1
    assert any(h["field"] == "snapshot" for h in basel["header"])


def test_working_tree_against_head_and_rev_against_working_tree(history: Path, invoke: Invoke) -> None:
    assert _json(invoke)["differs"] is False
    assert invoke("diff", "--exit-code").exit_code == 0
    assert invoke("diff", "v1", "--exit-code").exit_code == 1
    summaries = [
        [(d["name"], d["summary"]) for d in _json(invoke, *args)["datasets"]]
        for args in (["v1"], ["v1", "HEAD"])
    ]
    assert summaries[0] == summaries[1]
    assert _json(invoke, "v1")["new"] == "working tree"


def test_ranges(history: Path, invoke: Invoke) -> None:
    git(history, "checkout", "-q", "-b", "feature", "v1")
    lock = history / "locks/clinical_cohort/1"
    git(history, "rm", "-q", "-r", str(lock))
    commit_all(history, "drop the clinical lock")
    three = _json(invoke, "main...feature")
    assert three["old"].startswith("merge-base(")
    assert [d["name"] for d in three["datasets"] if d["status"] != "unchanged"] == ["clinical_cohort"]
    assert _dataset(three, "clinical_cohort")["status"] == "removed"
    two = _json(invoke, "main..feature")
    assert {d["name"] for d in two["datasets"] if d["status"] != "unchanged"} > {"clinical_cohort"}


def test_versions_and_revision_specs(history: Path, invoke: Invoke) -> None:
    doc = _json(invoke, "viseg_training@1", "viseg_training@2")
    [only] = doc["datasets"]
    assert (only["old_version"], only["new_version"]) == (1, 2)
    assert only["summary"]["added"] > 0
    assert only["summary"]["moved"] > 0
    assert {h["field"] for h in only["header"]} >= {"params", "recipe_digest"}
    pinned = _json(invoke, "v1:viseg_training@1", "viseg_training@1")
    assert [d["name"] for d in pinned["datasets"]] == ["viseg_training"]


def test_paths(history: Path, invoke: Invoke, tmp_path: Path) -> None:
    git(history, "worktree", "add", "-q", str(tmp_path / "old"), "v1")
    folder = _json(invoke, str(tmp_path / "old/locks/all_basel_data/1"), "locks/all_basel_data/1")
    assert _dataset(folder, "all_basel_data")["summary"]["metadata"] == 1
    split = "resources.all.jsonl"
    lines = _json(
        invoke, str(tmp_path / f"old/locks/all_basel_data/1/{split}"), f"locks/all_basel_data/1/{split}"
    )
    [only] = lines["datasets"]
    assert only["header"] == []
    assert only["summary"] == _dataset(folder, "all_basel_data")["summary"]


def test_dataset_filter_and_name_only(history: Path, invoke: Invoke) -> None:
    doc = _json(invoke, "v1", "HEAD", "-d", "all_basel_data")
    assert [d["name"] for d in doc["datasets"]] == ["all_basel_data"]
    result = invoke("diff", "v1", "HEAD", "-d", "all_basel_data", "--name-only")
    assert "basel/sub-BS08/ses-01/anat/sub-BS08_ses-01_T2w.nii.gz" in result.output.splitlines()


def test_text_report(history: Path, invoke: Invoke) -> None:
    result = invoke("diff", "v1", "HEAD", "-d", "all_basel_data")
    lines = result.output.splitlines()
    assert lines[:2] == ["--- v1:locks/all_basel_data/1", "+++ HEAD:locks/all_basel_data/1"]
    assert "= basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz  (attrs.Manufacturer)" in lines
    assert "~ basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz  (version, hash, size)" in lines
    assert lines[-1].startswith("all_basel_data@1: changed, ")
    assert "\x1b[" not in result.output  # no colour in a pipe
    stat = invoke("diff", "v1", "HEAD", "-d", "all_basel_data", "--stat").output
    assert "~ " not in stat
    assert stat.splitlines()[-1] == lines[-1]


def test_markdown_report(history: Path, invoke: Invoke) -> None:
    result = invoke("diff", "v1", "HEAD", "--format", "markdown", "--max-rows", "2")
    text = result.output
    assert text.startswith("## vxds diff: `v1` → `HEAD`\n")
    assert "| Dataset | Version | Status |" in text
    assert "<details><summary>" in text
    assert "more not shown (`--max-rows 2`)" in text


def test_leak_warnings(project: Path, invoke: Invoke) -> None:
    assert invoke("lock", "viseg_training@1").exit_code == 0
    assert invoke("lock", "viseg_training@2").exit_code == 0
    doc = _json(invoke, "viseg_training@1", "viseg_training@2")
    warnings = doc["datasets"][0]["warnings"]
    assert {w["kind"] for w in warnings} == {"held-out-to-training"}
    assert any(w["subject"] == '"BS04"' for w in warnings)


def test_bad_input(history: Path, invoke: Invoke) -> None:
    result = invoke("diff", "no-such-rev")
    assert result.exit_code == 2
    assert "'no-such-rev' is not a Git revision, a dataset, or a lock path" in result.output
    assert invoke("diff", "nosuch@1", "viseg_training@1").exit_code == 2
    assert "unknown revision 'nope'" in invoke("diff", "nope:viseg_training@1", "HEAD").output
    assert invoke("diff", "a", "b", "c").exit_code == 2
    result = invoke("diff", "v1", "-d", "nosuch@1")
    assert result.exit_code == 2
    assert "-d nosuch@1: no lock for it in v1 or working tree" in result.output
    split = history / "locks/all_basel_data/1/resources.all.jsonl"
    split.write_bytes(split.read_bytes().replace(b"BS03", b"BS33", 1))
    result = invoke("diff")
    assert result.exit_code == 2
    assert "locks/all_basel_data/1/resources.all.jsonl does not match its digest" in result.output


def test_diff_never_modifies_the_repository(history: Path, invoke: Invoke) -> None:
    before = (
        git(history, "status", "--porcelain"),
        git(history, "rev-parse", "HEAD"),
        git(history, "stash", "list"),
    )
    for args in (["v1"], ["main...v1"], ["v1:viseg_training@1", "viseg_training@2"], []):
        invoke("diff", *args)
    assert (
        git(history, "status", "--porcelain"),
        git(history, "rev-parse", "HEAD"),
        git(history, "stash", "list"),
    ) == before


def test_readme_example_is_what_vxds_prints(invoke: Invoke) -> None:
    result = invoke(
        "diff",
        "viseg_training@1",
        "viseg_training@2",
        "--format",
        "markdown",
        "--max-rows",
        "3",
        "--root",
        str(REPO),
    )
    assert result.exit_code == 0
    shown = result.output.replace("## vxds diff:", "#### vxds diff:").replace(
        "### viseg_training", "##### viseg_training"
    )
    assert shown in (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_run(history: Path, invoke: Invoke, name: str) -> None:
    """Every ``vxds diff`` command of the CI examples runs, with the target branch as main."""
    text = (REPO / "docs" / "ci" / name).read_text()
    yaml.safe_load(text)
    commands = re.findall(r"vxds diff [^\n>|]*", text)
    assert any("--format markdown" in c for c in commands)
    assert any("--exit-code" in c for c in commands)
    git(history, "checkout", "-q", "-b", "feature")
    git(history, "branch", "-f", "origin/main", "v1")  # a local stand-in for the remote branch
    for command in commands:
        command = re.sub(r'"origin/[^"]*\.\.\.HEAD"', "origin/main...HEAD", command)
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code in (0, 1), result.output
        assert ("--exit-code" in command) == (result.exit_code == 1)


def test_one_dataset_compares_head_with_the_working_tree(history: Path, invoke: Invoke) -> None:
    assert invoke("lock", "viseg_training@2").exit_code == 0
    (history / "locks/viseg_training/2/resources.test.jsonl").write_bytes(b"")
    result = invoke("diff", "viseg_training@2", "--format", "json")
    assert result.exit_code == 2
    assert "does not match its digest" in result.output
    git(history, "checkout", "--", "locks")
    doc = _json(invoke, "viseg_training")
    assert [(d["name"], d["new_version"], d["status"]) for d in doc["datasets"]] == [
        ("viseg_training", 1, "unchanged"),
        ("viseg_training", 2, "unchanged"),
    ]
    assert doc["old"] == "HEAD:viseg_training"
