"""Three-way merges of locks, by resource id, for Git's merge driver.

A split file merges line by line keyed on the id: a resource that only one side changed,
added or removed takes that side's line; the same change on both sides is taken once; two
different changes of the same id are a conflict, written between conflict markers at the
id's place so the file stays readable. A header merges field by field the same way; its
split counts and digests are those of the merged split files, so a merged lock verifies.
It is marked ``merged``: nothing ran its recipe, so it should be relocked before release.
A split of several shards (format 2) that only one side changed is taken with its shards;
one that both sides changed apart (no shard changed by both) merges shard list by shard
list (``merge_shard_lists``), Git having taken each changed shard file from its side; one
that both sides changed in the same shards merges by id and is cut again
(``vxds.locks.shard_merge``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from vxds.errors import LockError
from vxds.locks.disjoint import merged_claim
from vxds.locks.format import Header
from vxds.locks.shards import Shard, split_digest

MARKER = 7


@dataclass
class MergedLines:
    lines: list[bytes] = field(default_factory=list)  # newline-terminated
    conflicts: list[str] = field(default_factory=list)  # ids changed differently on both sides

    @property
    def data(self) -> bytes:
        return b"".join(self.lines)


def _keyed(lines: Iterable[bytes], label: str) -> Iterator[tuple[str, bytes]]:
    previous: str | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rid = orjson.loads(line)["id"]
            if not isinstance(rid, str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise LockError(f"{label}:{number}: not a resource record; cannot merge by id") from None
        if previous is not None and rid <= previous:
            raise LockError(f"{label}:{number}: id {rid!r} is out of order; cannot merge by id")
        previous = rid
        yield rid, line


def _aligned(
    base: Iterable[bytes], ours: Iterable[bytes], theirs: Iterable[bytes]
) -> Iterator[tuple[str, bytes | None, bytes | None, bytes | None]]:
    """Three sorted line streams joined on id: (id, base line, our line, their line)."""
    streams = [_keyed(base, "base"), _keyed(ours, "ours"), _keyed(theirs, "theirs")]
    heads = [next(s, None) for s in streams]
    while any(h is not None for h in heads):
        rid = min(h[0] for h in heads if h is not None)
        row: list[bytes | None] = []
        for i, head in enumerate(heads):
            if head is not None and head[0] == rid:
                row.append(head[1])
                heads[i] = next(streams[i], None)
            else:
                row.append(None)
        yield rid, row[0], row[1], row[2]


def merge_lines(
    base: Iterable[bytes],
    ours: Iterable[bytes],
    theirs: Iterable[bytes],
    *,
    labels: tuple[str, str] = ("ours", "theirs"),
) -> MergedLines:
    """Merge three sorted split files given as lines (without newlines)."""
    out = MergedLines()
    for rid, b, o, t in _aligned(base, ours, theirs):
        if o == t or b == t:
            chosen = o
        elif b == o:
            chosen = t
        else:
            out.conflicts.append(rid)
            out.lines.append(b"<" * MARKER + f" {labels[0]} ({rid})\n".encode())
            if o is not None:
                out.lines.append(o + b"\n")
            out.lines.append(b"=" * MARKER + b"\n")
            if t is not None:
                out.lines.append(t + b"\n")
            out.lines.append(b">" * MARKER + f" {labels[1]} ({rid})\n".encode())
            continue
        if chosen is not None:
            out.lines.append(chosen + b"\n")
    return out


# --- headers -----------------------------------------------------------------------------

FIELDS: tuple[str, ...] = (
    "name",
    "version",
    "script",
    "entrypoint",
    "params",
    "script_digest",
    "entry_digest",
)
SplitInfo = tuple[int, str]
# (split, base, ours, theirs) -> the merged split's (count, digest), None when it is gone,
# or a sentence saying why it cannot be merged.
SplitMerger = Callable[[str, SplitInfo | None, SplitInfo | None, SplitInfo | None], SplitInfo | str | None]


@dataclass
class MergedHeader:
    header: Header
    conflicts: list[str] = field(default_factory=list)  # what could not be merged, as sentences


def _three_way(base: Any, ours: Any, theirs: Any) -> tuple[Any, bool]:
    """The merged value and whether it merged cleanly."""
    if ours == theirs or base == theirs:
        return ours, True
    if base == ours:
        return theirs, True
    return ours, False


def merge_headers(
    base: Header | None,
    ours: Header,
    theirs: Header,
    merged_split: SplitMerger,
) -> MergedHeader:
    """Merge two lock headers against their base.

    ``merged_split`` is asked for the splits that both sides changed.
    """
    conflicts: list[str] = []
    values: dict[str, Any] = {}
    for name in FIELDS:
        b = getattr(base, name) if base is not None else None
        o, t = getattr(ours, name), getattr(theirs, name)
        values[name], clean = _three_way(dict(b) if name == "params" and b is not None else b, o, t)
        if not clean:
            conflicts.append(f"'{name}' changed on both sides ({_shown(o)} and {_shown(t)})")
    source, clean = _three_way(base.source if base else None, ours.source, theirs.source)
    if not clean:
        conflicts.append(f"the source changed on both sides ({ours.source} and {theirs.source})")
    snapshot, clean = _three_way(base.snapshot if base else None, ours.snapshot, theirs.snapshot)
    if not clean:  # both relocked against a newer source: no single snapshot describes the merge
        snapshot = "merged:" + ",".join(sorted({ours.snapshot, theirs.snapshot}))
    splits = _merge_splits(base, ours, theirs, merged_split, conflicts)
    header = replace(
        ours,
        **values,
        source=source,
        snapshot=snapshot,
        splits=splits,
        shards=_merged_shards(base, ours, theirs, splits),
        format=max(ours.format, theirs.format),
        merged=True,
    )
    return MergedHeader(replace(header, disjoint_by=merged_claim(ours, theirs, header)), conflicts)


def _merged_shards(
    base: Header | None, ours: Header, theirs: Header, splits: Mapping[str, SplitInfo]
) -> dict[str, tuple[Shard, ...]]:
    """The shards of each merged split: one side's, for a split as that side has it; those
    ``merge_shard_lists`` gives, for a sharded split both sides changed apart."""
    shards = {}
    for name, info in sorted(splits.items()):
        side = ours if ours.splits.get(name) == info else theirs
        if side.splits.get(name) == info and side.shards.get(name):
            shards[name] = side.shards[name]
        elif (merged := sharded_merge(base, ours, theirs, name)) is not None and split_info(merged) == info:
            shards[name] = merged
    return shards


def split_info(shards: Sequence[Shard]) -> SplitInfo:
    return sum(s.count for s in shards), split_digest(shards)


def sharded_merge(base: Header | None, ours: Header, theirs: Header, split: str) -> tuple[Shard, ...] | None:
    """``merge_shard_lists`` of a split that all three headers list shards of, else None."""
    lists = [h.shards.get(split) if h is not None else None for h in (base, ours, theirs)]
    if not all(lists):
        return None
    return merge_shard_lists(*lists)  # type: ignore[arg-type]


def merge_shard_lists(
    base: Sequence[Shard], ours: Sequence[Shard], theirs: Sequence[Shard]
) -> tuple[Shard, ...] | None:
    """The shards of a split both sides changed, from the three shard lists alone, when the
    two sides changed it apart: between shards all three list alike (*anchors*), a run of
    shards that one side changed is taken from it; a run both changed differently is None.

    The shard rule cuts by content, and a run between anchors starts and ends where all
    three sides cut alike, so the merged list is what cutting the merged lines gives
    (tests/cli/test_merge_driver.py holds it to a relock through a real ``git merge``).
    """
    common = set(base) & set(ours) & set(theirs)
    runs: list[Shard] = []
    at = [0, 0, 0]
    sides = (base, ours, theirs)
    for anchor in [*(s for s in base if s in common), None]:
        ends = [side.index(anchor) if anchor is not None else len(side) for side in sides]
        b, o, t = (tuple(side[a:e]) for side, a, e in zip(sides, at, ends, strict=True))
        run, clean = _three_way(b, o, t)
        if not clean:
            return None
        runs += [*run, *([anchor] if anchor is not None else [])]
        at = [e + 1 for e in ends]
    return tuple(runs)


def _merge_splits(
    base: Header | None,
    ours: Header,
    theirs: Header,
    merged_split: SplitMerger,
    conflicts: list[str],
) -> dict[str, SplitInfo]:
    before: Mapping[str, SplitInfo] = base.splits if base else {}
    splits: dict[str, SplitInfo] = {}
    for name in sorted(set(before) | set(ours.splits) | set(theirs.splits)):
        b, o, t = before.get(name), ours.splits.get(name), theirs.splits.get(name)
        value, clean = _three_way(b, o, t)
        if not clean:
            value = merged_split(name, b, o, t)
            if isinstance(value, str):
                conflicts.append(value)
                value = o
        if value is not None:
            splits[name] = value
    return splits


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
