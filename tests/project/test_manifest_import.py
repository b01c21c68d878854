"""The manifest's ``import:`` block: the schema, the entry it makes, and its line-level edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from vxds.errors import ManifestError
from vxds.project.manifest import load_manifest
from vxds.project.manifest_edit import with_import

SHA, NEW = "a" * 40, "b" * 40
BLOCK_FORM = f"""\
# registry imports
- name: cohort   # renamed
  version: 1
  import:
    url: ../registry
    rev: main
    commit: {SHA}
    name: clinical_cohort
    version: 1
  description: kept after the block

- name: other
  version: 1
  script_location: ./recipes/other.py
"""


def test_an_imported_entry_is_frozen_and_has_no_recipe(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(BLOCK_FORM)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes/other.py").write_text("")
    entry = load_manifest(path, require_scripts=True).find("cohort")  # no script needed
    assert entry.frozen
    assert entry.imported == {
        "url": "../registry",
        "rev": "main",
        "commit": SHA,
        "name": "clinical_cohort",
        "version": 1,
    }


def test_a_recipe_and_an_import_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(
        BLOCK_FORM.replace("  description: kept", "  script_location: ./x.py\n  description: kept")
    )
    with pytest.raises(
        ManifestError,
        match=r"datasets\.yaml:10: dataset cohort@1: field .script_location.: an imported dataset",
    ):
        load_manifest(path, require_scripts=False)


@pytest.mark.parametrize("flow", [False, True])
def test_with_import_replaces_only_the_block(tmp_path: Path, flow: bool) -> None:
    path = tmp_path / "datasets.yaml"
    text = BLOCK_FORM
    if flow:
        lines = text.splitlines()
        flow_block = (
            f'  import: {{url: ../registry, rev: main, commit: "{SHA}", name: clinical_cohort, version: 1}}'
        )
        text = "\n".join([*lines[:3], flow_block, *lines[9:]]) + "\n"
    block = {"url": "../registry", "rev": "v2", "commit": NEW, "name": "clinical_cohort", "version": 1}

    edited = with_import(text, path, "cohort", 1, block)

    lines = edited.splitlines()
    assert lines[:3] == ["# registry imports", "- name: cohort   # renamed", "  version: 1"]
    fields = f'"url": "../registry", "rev": "v2", "commit": "{NEW}", "name": "clinical_cohort", "version": 1'
    assert lines[3] == f"  import: {{{fields}}}"
    assert lines[4:] == BLOCK_FORM.splitlines()[9:]
    path.write_text(edited)
    assert load_manifest(path, require_scripts=False).find("cohort").imported == block
