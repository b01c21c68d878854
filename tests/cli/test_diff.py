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
    assert (
        "= basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz  (attrs.Manufacturer Siemens -> Other)"
        in lines
    )
    [t2] = [line for line in lines if line.startswith("~ basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w")]
    assert re.fullmatch(
        r"~ \S+  \(version (blake3:[0-9a-f]{12}…) -> (blake3:[0-9a-f]{12}…),"
        r" hash \1 -> \2, size \d+ -> \d+\)",
        t2,
    ), t2
    assert re.search(r"  snapshot: blake3:[0-9a-f]{12}… -> blake3:[0-9a-f]{12}…$", result.output, re.M)
    assert lines[-1].startswith("all_basel_data@1: changed, ")
    assert "\x1b[" not in result.output  # no colour in a pipe
    stat = invoke("diff", "v1", "HEAD", "-d", "all_basel_data", "--stat").output
    assert "~ " not in stat
    assert stat.splitlines()[-1] == lines[-1]


def test_markdown_report(history: Path, invoke: Invoke) -> None:
    result = invoke("diff", "v1", "HEAD", "--format", "markdown", "--max-rows", "2")
    text = result.output
    v1, head = (git(history, "rev-parse", "--short=7", rev).strip() for rev in ("v1", "HEAD"))
    assert text.startswith(f"## vxds diff: `v1@{v1}` → `HEAD@{head}`\n")
    assert "| Dataset | Version | Status | Lock |" in text
    assert "| attrs.Manufacturer Siemens → Other |" in text
    assert "<details><summary>" in text
    assert "more not shown (`--max-rows 2`)" in text


def test_leak_warnings(project: Path, invoke: Invoke) -> None:
    assert invoke("lock", "viseg_training@1").exit_code == 0
    assert invoke("lock", "viseg_training@2").exit_code == 0
    doc = _json(invoke, "viseg_training@1", "viseg_training@2")
    warnings = doc["datasets"][0]["warnings"]
    assert {w["kind"] for w in warnings} == {"held-out-to-training"}
    assert any(w["subject"] == "BS04" for w in warnings)  # the value itself, not JSON in JSON
    moves = doc["datasets"][0]["moves"]
    assert {
        "group": "BS04",
        "from": "test",
        "to": "train",
        "ids": [
            "basel/derivatives/lesions/sub-BS04/ses-02/anat/sub-BS04_ses-02_desc-lesion_mask.nii.gz",
            "basel/sub-BS04/ses-02/anat/sub-BS04_ses-02_T2w.nii.gz",
        ],
    } in moves
    assert len(moves) == 5  # 14 moved resources are 5 subjects
    text = invoke("diff", "viseg_training@1", "viseg_training@2").output
    assert '  attrs.subject "BS07": train -> test (4 resources)\n' in text


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


def _ci_commands(name: str) -> list[str]:
    """The vxds commands of a CI template, with the target branch as the local ``origin/main``."""
    text = (REPO / "docs" / "ci" / name).read_text()
    yaml.safe_load(text)
    commands = re.findall(r"vxds (?:diff|verify) [^\n>|]*", text)
    return [re.sub(r'"origin/[^"]*?(\.\.\.HEAD)?"', r"origin/main\1", c).strip() for c in commands]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_templates_run_and_fail_on_a_stale_lock(history: Path, invoke: Invoke, name: str) -> None:
    """Both templates' commands, on a pull request that is clean and on one not relocked."""
    commands = _ci_commands(name)
    assert [c.split()[1] for c in commands] == ["diff", "verify", "diff"]
    assert "--format markdown" in commands[0]
    assert commands[1] == "vxds verify --no-exec --base origin/main"
    assert "--exit-code" in commands[2]
    git(history, "branch", "-f", "origin/main", "main")  # a local stand-in for the remote branch
    git(history, "checkout", "-q", "-b", "feature")
    (history / "NOTES.md").write_text("no dataset change\n")
    commit_all(history, "notes")
    for command in commands:
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output)
    recipe = history / "recipes/basel.py"
    recipe.write_text(recipe.read_text() + "# a change committed without a relock\n")
    commit_all(history, "recipe changed, --no-verify")
    markdown, verify, exit_code = (invoke(*shlex.split(c)[1:]) for c in commands)
    assert markdown.exit_code == 0
    assert (
        "> stale: the recipe script ./recipes/basel.py changed; the lock was not relocked" in markdown.output
    )
    assert (verify.exit_code, exit_code.exit_code) == (1, 1)
    assert "VX203" in verify.output


def test_a_stale_lock_is_part_of_every_format(history: Path, invoke: Invoke) -> None:
    git(history, "checkout", "-q", "-b", "feature")
    datasets = history / "datasets.yaml"
    datasets.write_text(datasets.read_text().replace("test_every: 3", "test_every: 4"))
    commit_all(history, "params changed, no relock")
    doc = _json(invoke, "main...HEAD")
    states = {(d["name"], d["new_version"]): (d["state"], d["reasons"]) for d in doc["datasets"]}
    assert states[("viseg_training", 2)] == (
        "stale",
        [
            "the recipe params changed",
            "the manifest entry changed",
            "the lock was not relocked: run 'vxds lock viseg_training@2'",
        ],
    )
    assert states[("viseg_training", 1)] == ("fresh", [])
    assert doc["differs"] is False  # no lock changed; the exit code still fails on it
    assert invoke("diff", "main...HEAD", "--exit-code").exit_code == 1
    text = invoke("diff", "main...HEAD", "--hide-unchanged").output.splitlines()
    assert text == [
        "viseg_training@2: stale: the recipe params changed; the manifest entry changed;"
        " the lock was not relocked: run 'vxds lock viseg_training@2'",
    ]
    assert "No dataset changed" not in invoke("diff", "main...HEAD", "--format", "markdown").output
    assert invoke("diff", "main...HEAD", "-d", "all_basel_data", "--exit-code").exit_code == 0


def test_a_missing_lock_and_a_frozen_lock_that_changed(history: Path, invoke: Invoke) -> None:
    git(history, "checkout", "-q", "-b", "feature")
    with (history / "datasets.yaml").open("a") as fh:
        fh.write("\n- name: clinical_cohort\n  version: 2\n  script_location: ./recipes/clinical.py\n")
    assert invoke("bump", "all_basel_data").exit_code == 0
    git(history, "checkout", "v1", "--", "locks/all_basel_data/1")  # the published lock, put back wrongly
    commit_all(history, "a version without a lock; a frozen lock changed")
    doc = _json(invoke, "main...HEAD")
    states = {(d["name"], d["new_version"]): d["state"] for d in doc["datasets"]}
    assert states[("clinical_cohort", 2)] == "missing"
    assert states[("all_basel_data", 1)] == "frozen-changed"
    assert states[("all_basel_data", 2)] == "missing"
    text = invoke("diff", "main...HEAD").output
    assert (
        "clinical_cohort@2: missing: no lock at locks/clinical_cohort/2; run 'vxds lock clinical_cohort@2'"
        in text
    )
    markdown = invoke("diff", "main...HEAD", "--format", "markdown").output
    assert "| clinical_cohort | none → 2 | unchanged | missing |" in markdown
    assert "> [!CAUTION]\n> frozen-changed: frozen version changed" in markdown


def test_hide_unchanged(history: Path, invoke: Invoke) -> None:
    git(history, "checkout", "-q", "-b", "feature")
    recipe = history / "recipes/basel.py"
    recipe.write_text(recipe.read_text() + "# a comment\n")
    assert invoke("lock", "all_basel_data@1").exit_code == 0
    commit_all(history, "basel relocked")
    shown = invoke("diff", "main...HEAD", "--format", "markdown").output
    assert "| all_basel_data | 1 | changed | fresh |" in shown
    assert "| viseg_training |" not in shown
    assert "_3 unchanged datasets not shown (`--show-unchanged`)._" in shown
    every = invoke("diff", "main...HEAD", "--format", "markdown", "--show-unchanged").output
    assert "| viseg_training | 1 | unchanged | fresh |" in every
    assert "not shown" not in every
    text = invoke("diff", "main...HEAD").output
    assert "viseg_training@1: unchanged (26 unchanged)" in text
    hidden = invoke("diff", "main...HEAD", "--hide-unchanged").output
    assert "viseg_training@1: unchanged" not in hidden
    assert hidden.splitlines()[-1].startswith("all_basel_data@1: changed, ")


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
