"""``vxds diff --format markdown``: a pull-request comment.

A summary table of every dataset, then per changed dataset its warnings, header changes, a
per-split table and collapsible lists of the resources that changed, each cut at
``max_rows`` with the number of rows left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from vxds.locks.changes import (
    ADDED,
    CHANGED,
    KINDS,
    METADATA,
    MOVED,
    REMOVED,
    Change,
    ChangeKind,
    DatasetDiff,
)
from vxds.report.values import as_json, field_values, short

TITLE = "vxds diff"


def cell(value: Any) -> str:
    """Text safe inside a table cell."""
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def code(value: str) -> str:
    ticks = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{cell(value)}{pad}{ticks}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> Iterator[str]:
    yield "| " + " | ".join(headers) + " |"
    yield "|" + "|".join(":--" if a == "l" else "--:" for a in align) + "|"
    for row in rows:
        yield "| " + " | ".join(row) + " |"


def _heading(diff: DatasetDiff) -> str:
    if diff.old_version is None or diff.new_version is None or diff.old_version == diff.new_version:
        return f"{diff.name}@{diff.new_version or diff.old_version} ({diff.status})"
    return f"{diff.name}@{diff.old_version} → @{diff.new_version}"


def _version_cell(diff: DatasetDiff) -> str:
    old = "none" if diff.old_version is None else str(diff.old_version)
    new = "none" if diff.new_version is None else str(diff.new_version)
    return old if old == new else f"{old} → {new}"


def _summary_table(diffs: Sequence[DatasetDiff]) -> Iterator[str]:
    rows = []
    for diff in diffs:
        counts = diff.counts()
        rows.append(
            [cell(diff.name), _version_cell(diff), diff.status, diff.state or ""]
            + [str(counts[k]) for k in (*KINDS, "unchanged")]
            + [str(len(diff.warnings))]
        )
    headers = [
        "Dataset",
        "Version",
        "Status",
        "Lock",
        "Added",
        "Removed",
        "Changed",
        "Metadata",
        "Moved",
        "Unchanged",
    ]
    yield from _table([*headers, "Warnings"], rows, "llll" + "r" * 7)


def _split_table(diff: DatasetDiff) -> Iterator[str]:
    rows = []
    for name, counts in diff.splits.items():
        kinds: dict[ChangeKind, int] = dict.fromkeys(KINDS, 0)
        moved_out = 0
        for change in diff.changes:
            if change.split == name:
                kinds[change.kind] += 1
            if change.kind == MOVED and change.from_split == name:
                moved_out += 1
        types = ", ".join(
            f"{cell(t)} {b}→{a}" if b != a else f"{cell(t)} {a}"
            for t, (b, a) in counts.by.get("type", {}).items()
        )
        rows.append(
            [cell(name), str(counts.old), str(counts.new)]
            + [str(kinds[k]) for k in (ADDED, REMOVED, CHANGED, METADATA)]
            + [str(kinds[MOVED]), str(moved_out), types]
        )
    headers = ["Split", "Before", "After", "Added", "Removed", "Changed", "Metadata", "Moved in", "Moved out"]
    yield from _table([*headers, "By type"], rows, "l" + "r" * 8 + "l")


def _by_tables(diff: DatasetDiff, max_rows: int) -> Iterator[str]:
    fields = [f for counts in diff.splits.values() for f in counts.by if f != "type"]
    for field in dict.fromkeys(fields):
        rows = [
            [cell(split), cell(value), str(before), str(after)]
            for split, counts in diff.splits.items()
            for value, (before, after) in counts.by.get(field, {}).items()
        ]
        yield ""
        yield f"<details><summary>Counts by <code>{cell(field)}</code></summary>"
        yield ""
        yield from _table(["Split", cell(field), "Before", "After"], rows[:max_rows], "llrr")
        yield from _cut(len(rows), max_rows)
        yield ""
        yield "</details>"


def _cut(total: int, max_rows: int) -> Iterator[str]:
    if total > max_rows:
        yield ""
        yield f"_… and {total - max_rows} more not shown (`--max-rows {max_rows}`)._"


def _change_row(change: Change) -> list[str]:
    where = f"{change.from_split} → {change.split}" if change.kind == MOVED else change.split
    return [change.kind, cell(where), code(change.id), cell(", ".join(field_values(change, "→")))]


def _move_groups(diff: DatasetDiff, max_rows: int) -> Iterator[str]:
    """One row per ``group_by`` value that moved: 12 moved resources may be 6 subjects."""
    groups = diff.move_groups()
    if not groups:
        return
    rows = [[code(as_json(g.value)), cell(f"{g.from_split} → {g.to_split}"), str(len(g.ids))] for g in groups]
    yield ""
    yield from _table([cell(str(diff.group_by)), "Moved", "Resources"], rows[:max_rows], "llr")
    yield from _cut(len(rows), max_rows)


def _changes(diff: DatasetDiff, max_rows: int) -> Iterator[str]:
    if not diff.changes:
        return
    n = len(diff.changes)
    yield ""
    yield f"<details><summary>{n} changed resource{'s' if n != 1 else ''}</summary>"
    yield ""
    yield from _table(
        ["Change", "Split", "Id", "Fields"], [_change_row(c) for c in diff.changes[:max_rows]], "llll"
    )
    yield from _cut(n, max_rows)
    yield ""
    yield "</details>"


def _dataset(diff: DatasetDiff, max_rows: int) -> Iterator[str]:
    yield ""
    yield f"### {cell(_heading(diff))}"
    if diff.needs_relock or diff.state == "merged":
        yield ""
        yield "> [!CAUTION]" if diff.needs_relock else "> [!NOTE]"
        yield f"> {cell(diff.state)}: {cell('; '.join(diff.reasons))}"
    if diff.warnings:
        yield ""
        yield "> [!WARNING]"
        for warning in diff.warnings[:max_rows]:
            yield f"> - {cell(warning.message)}"
        if len(diff.warnings) > max_rows:
            yield f"> … and {len(diff.warnings) - max_rows} more warnings."
    if diff.header:
        yield ""
        rows = [[cell(h.field), code(short(h.old)), code(short(h.new))] for h in diff.header]
        yield from _table(["Header", "Old", "New"], rows, "lll")
    if diff.splits:
        yield ""
        yield from _split_table(diff)
    yield from _by_tables(diff, max_rows)
    yield from _move_groups(diff, max_rows)
    yield from _changes(diff, max_rows)


def _shown(diff: DatasetDiff) -> bool:
    return not diff.empty or diff.needs_relock or diff.state == "merged"


def render(
    diffs: Sequence[DatasetDiff], *, old: str, new: str, max_rows: int = 50, hide_unchanged: bool = True
) -> str:
    """The whole comment, ending with a newline; a dataset with no change and a fresh lock is
    left out of the summary table with ``hide_unchanged``."""
    lines = [f"## {TITLE}: {code(old)} → {code(new)}", ""]
    if not diffs:
        lines.append("No locks on either side.")
    elif not any(_shown(d) for d in diffs):
        lines.append(f"No dataset changed ({len(diffs)} compared).")
    else:
        listed = [d for d in diffs if _shown(d) or not hide_unchanged]
        lines += _summary_table(listed)
        if len(listed) < len(diffs):
            n = len(diffs) - len(listed)
            lines += ["", f"_{n} unchanged dataset{'s' if n != 1 else ''} not shown (`--show-unchanged`)._"]
        for diff in diffs:
            if _shown(diff):
                lines += _dataset(diff, max_rows)
    return "\n".join(lines) + "\n"
