"""vxds/report: the text, JSON and Markdown renderings of a small fixed diff."""

from __future__ import annotations

from tests.helpers import NEW, OLD, R, make_lock, make_split
from vxds.locks.diff import DatasetDiff, diff_locks
from vxds.report.jsonreport import document
from vxds.report.markdown import cell, code, render
from vxds.report.text import change_words, names
from vxds.report.text import render as text
from vxds.report.values import shown

EXPECTED_MARKDOWN = """\
## vxds diff: `v1@1a2b3c4` → `HEAD@5d6e7f8`

| Dataset | Version | Status | Lock | Added | Removed | Changed | Metadata | Moved | Unchanged | Warnings |
|:--|:--|:--|:--|--:|--:|--:|--:|--:|--:|--:|
| d | 1 | changed | stale | 2 | 1 | 1 | 1 | 2 | 2 | 1 |

_1 unchanged dataset not shown (`--show-unchanged`)._

### d@1 (changed)

> [!CAUTION]
> stale: the recipe params changed; the lock was not relocked

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
| metadata | train | `a` | attrs.site basel → zurich |
| changed | train | `b` | version 1 → 2 |
| removed | train | `c` |  |

_… and 4 more not shown (`--max-rows 3`)._

</details>
"""


def _stale() -> DatasetDiff:
    diff = diff_locks(OLD, NEW)
    diff.state, diff.reasons = "stale", ("the recipe params changed", "the lock was not relocked")
    return diff


def test_markdown_is_exact() -> None:
    diffs = [_stale(), diff_locks(OLD, OLD)]
    assert render(diffs, old="v1@1a2b3c4", new="HEAD@5d6e7f8", max_rows=3) == EXPECTED_MARKDOWN


def test_markdown_shows_unchanged_datasets_when_asked() -> None:
    shown = render([diff_locks(OLD, NEW), diff_locks(OLD, OLD)], old="a", new="b", hide_unchanged=False)
    assert "| d | 1 | unchanged |  | 0 | 0 | 0 | 0 | 0 | 7 | 0 |" in shown
    assert "not shown" not in shown


def test_a_stale_lock_is_reported_when_nothing_changed() -> None:
    diff = diff_locks(OLD, OLD)
    diff.state, diff.reasons = "stale", ("the recipe params changed", "the lock was not relocked")
    markdown = render([diff], old="a", new="b")
    assert "No dataset changed" not in markdown
    assert "> stale: the recipe params changed; the lock was not relocked" in markdown
    assert list(text([diff])) == [
        "d@1: unchanged (7 unchanged)",
        "d@1: stale: the recipe params changed; the lock was not relocked",
    ]
    assert list(text([diff_locks(OLD, OLD)], hide_unchanged=True)) == []


def test_moves_grouped_by_the_group_by_key() -> None:
    diff = diff_locks(OLD, NEW, group_by="attrs.site")
    groups = [(g.value, g.from_split, g.to_split, g.ids) for g in diff.move_groups()]
    assert groups == [(None, "test", "train", ("u",)), (None, "train", "test", ("m",))]
    lines = list(text([diff]))
    assert "  attrs.site null: train -> test (1 resource)" in lines
    assert "| `null` | train → test | 1 |" in render([diff], old="a", new="b")
    assert document([diff], old="a", new="b")["datasets"][0]["moves"][0] == {
        "group": None,
        "from": "test",
        "to": "train",
        "ids": ["u"],
    }


def test_long_values_are_cut_in_text_only() -> None:
    old, new = R("x", note="a" * 80), R("x", note="b" * 80)
    diff = diff_locks(make_lock(all=make_split(old)), make_lock(all=make_split(new)))
    [line] = [line for line in text([diff]) if line.startswith("= x")]
    assert line == f"= x  (attrs.note {'a' * 39}… -> {'b' * 39}…)"
    values = document([diff], old="a", new="b")["datasets"][0]["changes"][0]["values"]
    assert values == {"attrs.note": {"old": "a" * 80, "new": "b" * 80}}


def test_digests_are_short_in_text() -> None:
    digest = "blake3:" + "0123456789abcdef" * 4
    assert shown(digest) == "blake3:0123456789ab…"
    assert shown(None) == "(none)"


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
    assert "= a  (attrs.site basel -> zurich)" in lines
    assert "~ b  (version 1 -> 2)" in lines
    assert "- c" in lines
    assert "+ n" in lines
    assert "> m  train -> test" in lines
    assert lines[-1] == "d@1: changed, 2 added, 1 removed, 1 changed, 1 metadata, 2 moved (2 unchanged)"
    assert list(text([diff_locks(OLD, OLD)])) == ["d@1: unchanged (7 unchanged)"]
    assert list(names([diff_locks(OLD, NEW)])) == ["a", "b", "c", "m", "n", "u", "v"]
    assert change_words(diff_locks(OLD, NEW).counts()) == "2 added, 1 removed, 1 changed, 1 metadata, 2 moved"


def test_json_document() -> None:
    doc = document([diff_locks(OLD, NEW)], old="v1", new="HEAD")
    assert doc["format"] == 2
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
