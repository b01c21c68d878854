"""What changed between two locks: a merge-join over their sorted lines, by id."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from vxds.lockfile import Lock, Split


@dataclass
class SplitDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class LockDiff:
    splits: dict[str, SplitDiff] = field(default_factory=dict)
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # id, from, to

    @property
    def empty(self) -> bool:
        return not self.moved and not any(d.added or d.removed or d.changed for d in self.splits.values())

    def counts(self) -> dict[str, int]:
        return {
            "added": sum(len(d.added) for d in self.splits.values()),
            "removed": sum(len(d.removed) for d in self.splits.values()),
            "changed": sum(len(d.changed) for d in self.splits.values()),
            "moved": len(self.moved),
            "unchanged": sum(d.unchanged for d in self.splits.values()),
        }


def _keyed(split: Split | None) -> Iterator[tuple[str, bytes]]:
    if split is not None:
        for line in split.lines():
            yield orjson.loads(line)["id"], line


def diff_split(old: Split | None, new: Split | None) -> SplitDiff:
    """Merge-join two sorted splits by id."""
    out = SplitDiff()
    a, b = _keyed(old), _keyed(new)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            out.removed.append(x[0])  # type: ignore[index]
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            out.added.append(y[0])
            y = next(b, None)
        else:
            if x[1] == y[1]:
                out.unchanged += 1
            else:
                out.changed.append(x[0])
            x, y = next(a, None), next(b, None)
    return out


def diff_locks(old: Lock | None, new: Lock | None) -> LockDiff:
    """Per-split additions, removals and changes; an id that changed split is *moved*."""
    old_splits = old.splits if old else {}
    new_splits = new.splits if new else {}
    result = LockDiff(
        {
            name: diff_split(old_splits.get(name), new_splits.get(name))
            for name in sorted(set(old_splits) | set(new_splits))
        }
    )
    removed_from = {rid: name for name, d in result.splits.items() for rid in d.removed}
    moved: set[str] = set()
    for name, d in result.splits.items():
        for rid in d.added:
            origin = removed_from.get(rid)
            if origin is not None:
                result.moved.append((rid, origin, name))
                moved.add(rid)
    if moved:
        for d in result.splits.values():
            d.added = [rid for rid in d.added if rid not in moved]
            d.removed = [rid for rid in d.removed if rid not in moved]
    result.moved.sort()
    return result
