"""``vxds diff`` as text: git-like, one line per resource, a summary line per dataset.

Colour comes from ``paint(text, role)``; the CLI styles roles on a terminal and passes
them through unchanged in a pipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from vxds.locks.diff import ADDED, CHANGED, METADATA, MOVED, REMOVED, Change, DatasetDiff, SplitCounts

Paint = Callable[[str, str], str]
MARKS = {ADDED: "+", REMOVED: "-", CHANGED: "~", METADATA: "=", MOVED: ">"}


def plain(text: str, role: str) -> str:
    return text


def change_words(counts: Mapping[str, int]) -> str:
    """``+added -removed ~changed >moved`` (metadata changes count as changed)."""
    words = [f"+{counts['added']}", f"-{counts['removed']}", f"~{counts['changed'] + counts['metadata']}"]
    if counts["moved"]:
        words.append(f">{counts['moved']}")
    return " ".join(words)


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
    parts = [f"{c[k]} {k}" for k in ("added", "removed", "changed", "metadata", "moved") if c[k]]
    if diff.header:
        parts.append("header changed")
    return (
        f"{versions(diff)}: {diff.status}"
        + (f", {', '.join(parts)}" if parts else "")
        + (f" ({c['unchanged']} unchanged)")
    )


def _value(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


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
    mark = MARKS[change.kind]
    if change.kind == MOVED:
        detail = f"  {change.from_split} -> {change.split}"
        return f"{mark} {change.id}{detail}" + (f"  ({', '.join(change.fields)})" if change.fields else "")
    fields = f"  ({', '.join(change.fields)})" if change.fields else ""
    return f"{mark} {change.id}{fields}"


def render(diffs: Sequence[DatasetDiff], *, paint: Paint = plain, stat: bool = False) -> Iterator[str]:
    """Lines of the text report; unchanged datasets get their summary line only."""
    for diff in diffs:
        if diff.empty:
            yield paint(summary(diff), "summary")
            continue
        yield paint(f"--- {diff.old_label or '/dev/null'}", "removed")
        yield paint(f"+++ {diff.new_label or '/dev/null'}", "added")
        for field in diff.header:
            yield paint(f"  {field.field}: {_value(field.old)} -> {_value(field.new)}", "header")
        by_split: dict[str, list[Change]] = {}
        for change in diff.changes:
            by_split.setdefault(change.split if change.kind != MOVED else "", []).append(change)
        for name, counts in diff.splits.items():
            yield paint(_split_line(name, counts), "hunk")
            yield from (paint(line, "dim") for line in _by_lines(name, counts))
            if not stat:
                for change in by_split.get(name, ()):
                    yield paint(_change_line(change), change.kind)
        if not stat and by_split.get(""):
            yield paint("@@ moved between splits @@", "hunk")
            for change in by_split[""]:
                yield paint(_change_line(change), MOVED)
        for warning in diff.warnings:
            key = diff.name if diff.new_version is None else f"{diff.name}@{diff.new_version}"
            yield paint(f"warning: {key}: {warning.message}", "warning")
        yield paint(summary(diff), "summary")


def names(diffs: Sequence[DatasetDiff]) -> Iterator[str]:
    """``--name-only``: the ids that differ; prefixed with ``name@version`` when more than one
    dataset differs."""
    changed = [d for d in diffs if d.changes]
    for diff in changed:
        prefix = f"{diff.name}@{diff.new_version or diff.old_version}\t" if len(changed) > 1 else ""
        for rid in sorted({c.id for c in diff.changes}):
            yield prefix + rid
