"""vxds/report: the text, JSON and Markdown renderings of a small fixed diff."""

from __future__ import annotations

from tests.helpers import NEW, OLD
from vxds.locks.diff import diff_locks
from vxds.report.jsonreport import document
from vxds.report.markdown import cell, code, render
from vxds.report.text import change_words, names
from vxds.report.text import render as text

EXPECTED_MARKDOWN = """\
## vxds diff: `v1` → `HEAD`

| Dataset | Version | Status | Added | Removed | Changed | Metadata | Moved | Unchanged | Warnings |
|:--|:--|:--|--:|--:|--:|--:|--:|--:|--:|
| d | 1 | changed | 2 | 1 | 1 | 1 | 2 | 2 | 1 |
| d | 1 | unchanged | 0 | 0 | 0 | 0 | 0 | 7 | 0 |

### d@1 (changed)

> [!WARNING]
> - u was in held-out split test and is now in train

| Split | Before | After | Added | Removed | Changed | Metadata | Moved in | Moved out | By type |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|:--|
| test | 2 | 2 | 0 | 0 | 0 | 0 | 1 | 1 | Mask 2→1, Volume 0→1 |
| train | 5 | 5 | 1 | 1 | 1 | 1 | 1 | 1 | Mask 1→3, Volume 4→2 |
| val | 0 | 1 | 1 | 0 | 0 | 0 | 0 | 0 | Mask 0→1 |

<details><summary>7 changed resources</summary>

| Change | Split | Id | Fields |
|:--|:--|:--|:--|
| metadata | train | `a` | attrs.site |
| changed | train | `b` | version |
| removed | train | `c` |  |

_… and 4 more not shown (`--max-rows 3`)._

</details>
"""


def test_markdown_is_exact() -> None:
    assert (
        render([diff_locks(OLD, NEW), diff_locks(OLD, OLD)], old="v1", new="HEAD", max_rows=3)
        == EXPECTED_MARKDOWN
    )


def test_markdown_without_changes() -> None:
    assert render([diff_locks(OLD, OLD)], old="a", new="b").endswith("No dataset changed (1 compared).\n")
    assert render([], old="a", new="b").endswith("No locks on either side.\n")


def test_markdown_escapes_cells() -> None:
    assert cell("a|b\nc") == "a\\|b c"
    assert code("x`y") == "``x`y``"


def test_text_lines() -> None:
    lines = list(text([diff_locks(OLD, NEW)]))
    assert lines[:2] == ["--- d@1", "+++ d@1"]
    assert "@@ train: 5 -> 5 resources (Mask 1 -> 3, Volume 4 -> 2) @@" in lines
    assert "= a  (attrs.site)" in lines
    assert "~ b  (version)" in lines
    assert "- c" in lines
    assert "+ n" in lines
    assert "> m  train -> test" in lines
    assert lines[-1] == "d@1: changed, 2 added, 1 removed, 1 changed, 1 metadata, 2 moved (2 unchanged)"
    assert list(text([diff_locks(OLD, OLD)])) == ["d@1: unchanged (7 unchanged)"]
    assert list(names([diff_locks(OLD, NEW)])) == ["a", "b", "c", "m", "n", "u", "v"]
    assert change_words(diff_locks(OLD, NEW).counts()) == "+2 -1 ~2 >2"


def test_json_document() -> None:
    doc = document([diff_locks(OLD, NEW)], old="v1", new="HEAD")
    assert doc["format"] == 1
    assert doc["differs"] is True
    [entry] = doc["datasets"]
    assert set(entry) >= {"name", "old_version", "new_version", "status", "summary", "changes", "warnings"}
    assert entry["summary"] == {
        "added": 2,
        "removed": 1,
        "changed": 1,
        "metadata": 1,
        "moved": 2,
        "unchanged": 2,
    }
