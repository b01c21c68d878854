"""``vxds diff`` as text: git-like, one line per resource, a summary line per dataset.

Colour comes from ``paint(text, role)``; the CLI styles roles on a terminal and passes
them through unchanged in a pipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

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
    SplitCounts,
)
from vxds.report.values import as_json, field_values, short

# What a line is, for colour: a change's kind, or one of the parts around the changes.
Role = ChangeKind | Literal["summary", "header", "hunk", "dim", "warning"]
Paint = Callable[[str, Role], str]
MARKS: dict[ChangeKind, str] = {ADDED: "+", REMOVED: "-", CHANGED: "~", METADATA: "=", MOVED: ">"}


def plain(text: str, role: Role) -> str:
    return text


def change_words(counts: Mapping[str, int]) -> str:
    """``1 changed, 6 metadata``: the resources that changed, in ``vxds diff``'s categories."""
    return ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts.get(kind))


def versions(diff: DatasetDiff) -> str:
    """``name@1 -> @2``, ``name@2``, or ``name@1 -> (removed)``."""
    old = f"{diff.name}@{diff.old_version}" if diff.old_version is not None else None
    new = f"@{diff.new_version}" if diff.new_version is not None else None
    if old and new:
        return old if diff.old_version == diff.new_version else f"{old} -> {new}"
    if old:
        return f"{old} (removed)"
    return f"{diff.name}{new or ''} (new)"


def summary(diff: DatasetDiff) -> str:
    c = diff.counts()
    parts = [change_words(c)] if any(c[k] for k in KINDS) else []
    if diff.header:
        parts.append("header changed")
    return (
        f"{versions(diff)}: {diff.status}"
        + (f", {', '.join(parts)}" if parts else "")
        + (f" ({c['unchanged']} unchanged)")
    )


def _split_line(name: str, counts: SplitCounts) -> str:
    types = ", ".join(
        f"{value} {before} -> {after}" if before != after else f"{value} {after}"
        for value, (before, after) in counts.by.get("type", {}).items()
    )
    return f"@@ {name}: {counts.old} -> {counts.new} resources" + (f" ({types})" if types else "") + " @@"


def _by_lines(name: str, counts: SplitCounts) -> Iterator[str]:
    for field, values in counts.by.items():
        if field == "type":
            continue
        shown = ", ".join(
            f"{value} {b} -> {a}" if b != a else f"{value} {a}" for value, (b, a) in values.items()
        )
        yield f"   {name} by {field}: {shown}"


def _change_line(change: Change) -> str:
    """``~ id  (attrs.age 49 -> 50)``; a move names its splits first."""
    mark = MARKS[change.kind]
    fields = f"  ({', '.join(field_values(change))})" if change.fields else ""
    moved = f"  {change.from_split} -> {change.split}" if change.kind == MOVED else ""
    return f"{mark} {change.id}{moved}{fields}"


def state_line(diff: DatasetDiff) -> str | None:
    """``name@1: stale: the recipe script ... changed; the lock was not relocked``."""
    if diff.state not in ("stale", "missing", "frozen-changed", "merged"):
        return None
    return f"{diff.name}@{diff.new_version or diff.old_version}: {diff.state}: {'; '.join(diff.reasons)}"


def render(
    diffs: Sequence[DatasetDiff], *, paint: Paint = plain, stat: bool = False, hide_unchanged: bool = False
) -> Iterator[str]:
    """Lines of the text report; unchanged datasets get their summary line only (none when
    ``hide_unchanged``), and a lock that is not fresh a line saying why."""
    for diff in diffs:
        if not diff.empty:
            yield from _dataset(diff, paint, stat=stat)
        state = state_line(diff)
        has_lock = diff.old_version is not None or diff.state != "missing"
        if has_lock and not (hide_unchanged and diff.empty):
            yield paint(summary(diff), "summary")
        if state is not None:
            yield paint(state, "warning")


def _dataset(diff: DatasetDiff, paint: Paint, *, stat: bool) -> Iterator[str]:
    """A changed dataset's lines above its summary: header, hunks per split, warnings."""
    yield paint(f"--- {diff.old_label or '/dev/null'}", "removed")
    yield paint(f"+++ {diff.new_label or '/dev/null'}", "added")
    for field in diff.header:
        yield paint(f"  {field.field}: {short(field.old)} -> {short(field.new)}", "header")
    by_split: dict[str, list[Change]] = {}
    for change in diff.changes:
        by_split.setdefault(change.split if change.kind != MOVED else "", []).append(change)
    for name, counts in diff.splits.items():
        yield paint(_split_line(name, counts), "hunk")
        yield from (paint(line, "dim") for line in _by_lines(name, counts))
        if not stat:
            yield from (paint(_change_line(c), c.kind) for c in by_split.get(name, ()))
    if not stat and by_split.get(""):
        yield paint("@@ moved between splits @@", "hunk")
        yield from _moves(diff, by_split[""], paint)
    key = diff.name if diff.new_version is None else f"{diff.name}@{diff.new_version}"
    for warning in diff.warnings:
        yield paint(f"warning: {key}: {warning.message}", "warning")


def _moves(diff: DatasetDiff, moved: list[Change], paint: Paint) -> Iterator[str]:
    """The moved resources, under one line per ``group_by`` value when the dataset has one."""
    groups = diff.move_groups()
    if not groups:
        yield from (paint(_change_line(c), MOVED) for c in moved)
        return
    by_id = {c.id: c for c in moved}
    for group in groups:
        n = len(group.ids)
        head = f"{diff.group_by} {as_json(group.value)}: {group.from_split} -> {group.to_split}"
        yield paint(f"  {head} ({n} resource{'s' if n != 1 else ''})", "dim")
        yield from (paint(_change_line(by_id[rid]), MOVED) for rid in group.ids)


def names(diffs: Sequence[DatasetDiff]) -> Iterator[str]:
    """``--name-only``: the ids that differ; prefixed with ``name@version`` when more than one
    dataset differs."""
    changed = [d for d in diffs if d.changes]
    for diff in changed:
        prefix = f"{diff.name}@{diff.new_version or diff.old_version}\t" if len(changed) > 1 else ""
        for rid in sorted({c.id for c in diff.changes}):
            yield prefix + rid
