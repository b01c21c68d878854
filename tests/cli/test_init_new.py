from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, Invoke

SCAFFOLD = [
    "datasets.yaml",
    "recipes/.gitkeep",
    "locks/.gitkeep",
    "pyproject.toml",
    ".pre-commit-config.yaml",
    ".gitignore",
]


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_scaffolds_and_never_overwrites(empty: Path, invoke: Invoke) -> None:
    (empty / "pyproject.toml").write_text('[project]\nname = "x"  # keep me\n')
    (empty / ".gitignore").write_text("*.pyc")
    result = invoke("init", "--source", "./data")
    assert result.exit_code == 0
    for rel in SCAFFOLD:
        assert (empty / rel).exists(), rel
    pyproject = (empty / "pyproject.toml").read_text()
    assert pyproject.startswith('[project]\nname = "x"  # keep me\n')
    assert '[tool.vxds]\nmanifest = "datasets.yaml"\nlocks = "locks"\nsource = "./data"\n' in pyproject
    assert (empty / ".gitignore").read_text() == (
        "*.pyc\n# vxds' local cache\n.vxds/\n"
        "# vxds materialize's default output (derived from the locks)\nmaterialized/\n"
    )

    before = {rel: (empty / rel).read_bytes() for rel in SCAFFOLD}
    (empty / "datasets.yaml").write_text("# mine\n")
    result = invoke("init")
    assert result.exit_code == 0
    assert result.output.count("kept") == 7  # .gitattributes too; git config is skipped outside Git
    assert (empty / "datasets.yaml").read_text() == "# mine\n"
    assert {rel: (empty / rel).read_bytes() for rel in SCAFFOLD if rel != "datasets.yaml"} == {
        rel: b for rel, b in before.items() if rel != "datasets.yaml"
    }


def test_new_then_lock_end_to_end(empty: Path, invoke: Invoke) -> None:
    invoke("init", "--source", "./data")
    shutil.copytree(REPO / "sample-data", empty / "data")
    result = invoke("new", "lesion-seg", "--description", "T2w: with masks")
    assert result.exit_code == 0, result.output
    assert (empty / "recipes/lesion-seg.py").exists()
    text = (empty / "datasets.yaml").read_text()
    assert text.startswith("# vxds manifest")  # the template's comments survive
    assert text.endswith(
        '\n- name: lesion-seg\n  version: 1\n  description: "T2w: with masks"\n'
        "  script_location: ./recipes/lesion-seg.py\n  entrypoint: lesion_seg\n  group_by: attrs.subject\n"
    )
    result = invoke("lock", "--all")
    assert result.exit_code == 0, result.output
    assert "written  lesion-seg@1: test" in result.output
    result = invoke("new", "lesion-seg", "--version", "2", "--script", "recipes/lesion-seg.py")
    assert result.exit_code == 0, result.output
    assert (
        "version: 2\n  script_location: ./recipes/lesion-seg.py\n  group_by: attrs.subject\n"
        in (empty / "datasets.yaml").read_text()
    )


def test_new_keeps_comments_in_the_mapping_form(empty: Path, invoke: Invoke) -> None:
    (empty / "recipes").mkdir()
    (empty / "recipes/a.py").write_text("")
    original = (
        "# top comment\n"
        "defaults:\n"
        "  source: ./data  # shared\n"
        "datasets:\n"
        "  - name: a  # first\n"
        "    version: 1\n"
        "    script_location: ./recipes/a.py\n"
    )
    (empty / "datasets.yaml").write_text(original)
    result = invoke("new", "b", "--group-by", "")
    assert result.exit_code == 0, result.output
    assert (empty / "datasets.yaml").read_text() == original + (
        "\n  - name: b\n    version: 1\n    script_location: ./recipes/b.py\n    entrypoint: b\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Name"], "must use only lower-case letters"),
        (["a"], "a@1 is already in datasets.yaml"),
        (["c", "--script", "nope.py"], "--script nope.py: no such file"),
    ],
)
def test_new_refuses(empty: Path, invoke: Invoke, args: list[str], message: str) -> None:
    (empty / "recipes").mkdir()
    (empty / "recipes/a.py").write_text("")
    (empty / "datasets.yaml").write_text("- name: a\n  version: 1\n  script_location: ./recipes/a.py\n")
    before = (empty / "datasets.yaml").read_text()
    result = invoke("new", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert (empty / "datasets.yaml").read_text() == before
