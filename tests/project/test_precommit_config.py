"""The vxds hooks added to a pre-commit configuration as text: every other line kept."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from vxds.project.precommit_config import merged, scoped, write
from vxds.templates import read

OTHER = {"repo": "https://github.com/pre-commit/pre-commit-hooks", "rev": "v4.6.0", "hooks": [{"id": "x"}]}


@pytest.mark.parametrize("indent", [0, 2, 4])
def test_merged_keeps_every_line_and_adds_one_local_repo(indent: int) -> None:
    pad = " " * indent
    text = (
        f"# top comment\nrepos:\n{pad}- repo: {OTHER['repo']}  # pinned\n{pad}  rev: v4.6.0\n"
        f"{pad}  hooks:\n{pad}  - id: x\n\nfail_fast: true\n"
    )
    new = merged(text, "ml/datasets")
    assert new is not None
    matcher = difflib.SequenceMatcher(a=text.splitlines(), b=new.splitlines(), autojunk=False)
    edits = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    assert [op[0] for op in edits] == ["insert"]  # one block added, every other line as it was
    document = yaml.safe_load(new)
    assert document["fail_fast"] is True
    assert document["repos"][0] == OTHER
    hooks = {h["id"]: h for h in document["repos"][1]["hooks"]}
    assert document["repos"][1]["repo"] == "local"
    assert hooks["vxds-verify"]["entry"] == "vxds -C ml/datasets verify --no-exec --quiet"
    assert hooks["vxds-manifest"]["files"] == r"^ml/datasets/datasets\.yaml$"


def test_at_the_root_the_template_is_unchanged() -> None:
    assert scoped(read("pre-commit-config.yaml.txt"), "") == read("pre-commit-config.yaml.txt")
    assert (
        yaml.safe_load(scoped(read("pre-commit-config.yaml.txt"), "a b/c"))["repos"][0]["hooks"][1]["entry"]
        == "vxds -C 'a b/c' lock --stale --exit-code"
    )


@pytest.mark.parametrize("text", ["repos: []\n", "minimum_pre_commit_version: '3'\n"])
def test_a_config_this_edit_cannot_extend_is_left_alone(tmp_path: Path, text: str) -> None:
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(text)
    assert merged(text, "") is None
    assert write(config, "") == "skipped"
    assert config.read_text() == text


def test_write_creates_then_adds_once(tmp_path: Path) -> None:
    config = tmp_path / ".pre-commit-config.yaml"
    assert write(config, "") == "created"
    assert write(config, "") == "kept"
    assert write(config, "sub") == "updated"  # a second project in the same repository
    assert write(config, "sub") == "kept"
    repos = yaml.safe_load(config.read_text())["repos"]
    assert [h["entry"] for r in repos for h in r["hooks"] if h["id"] == "vxds-lock"] == [
        "vxds lock --stale --exit-code",
        "vxds -C sub lock --stale --exit-code",
    ]
