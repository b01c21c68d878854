"""vxds/project/manifest_edit.py: line-level edits of datasets.yaml (here: ``with_bump``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vxds.errors import ManifestError
from vxds.project.manifest_edit import with_bump

DOCUMENT = """\
defaults:
  group_by: attrs.subject

datasets:
  # the trial
  - name: trial
    version: 1
    frozen: false   # not yet
    script_location: ./recipes/trial.py
    params:
      every: 3      # one in three held out
  - name: other
    version: 1
    script_location: ./recipes/other.py
"""


def test_bump_in_the_document_form_keeps_indentation_and_comments() -> None:
    assert with_bump(DOCUMENT, Path("datasets.yaml"), "trial", 1) == (
        "defaults:\n  group_by: attrs.subject\n\ndatasets:\n  # the trial\n"
        "  - name: trial\n    version: 1\n    frozen: true   # not yet\n"
        "    script_location: ./recipes/trial.py\n    params:\n      every: 3      # one in three held out\n"
        "\n"
        "  - name: trial\n    version: 2\n"
        "    script_location: ./recipes/trial.py\n    params:\n      every: 3      # one in three held out\n"
        "\n"
        "  - name: other\n    version: 1\n    script_location: ./recipes/other.py\n"
    )


def test_bump_of_the_last_entry_appends_it() -> None:
    text = "- name: a\n  version: 3\n  script_location: a.py\n"
    assert with_bump(text, Path("m.yaml"), "a", 3) == (
        "- name: a\n  version: 3\n  frozen: true\n  script_location: a.py\n\n"
        "- name: a\n  version: 4\n  script_location: a.py\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {name: a, version: 1, script_location: a.py}\n", "m.yaml:1: a@1 is written in flow style"),
        ("- name: a\n  version: 2\n  script_location: a.py\n", "m.yaml: no entry for a@1 to bump"),
    ],
)
def test_what_cannot_be_bumped_is_a_manifest_error(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        with_bump(text, Path("m.yaml"), "a", 1)
    assert caught.value.problems[0].startswith(message)
