"""The three-way merge of a sharded split that both sides changed in the same shards.

The split's resources merge by id as an unsharded split's lines do (``merge.merge_lines``:
a resource one side changed takes that side's line, one both changed differently is a
conflict), and the merged lines are cut again by the shard rule, so the result is what a
relock of the merged resources writes, byte for byte.

Git merges a lock file by file, though: a shard file only one side changed, added or
removed is taken from that side, and only a file both changed reaches the merge driver.
``git_outcome`` says which files that leaves, given what the driver writes for the files it
is asked about; the merge is clean only when those are exactly the relock's files (a
boundary that moved on both sides can ask for a file no side has, which Git cannot give).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vxds.locks import shards as shards_module
from vxds.locks.merge import merge_lines
from vxds.locks.shards import Shard, ShardRule
from vxds.locks.splits import Split, split_lines

Files = Mapping[str, bytes]  # a split's files, in order: file name -> bytes


@dataclass(frozen=True)
class MergedSplit:
    """The relock of a split's merged resources: its files in order, shards (empty for a
    split of one file), count and digest; or the ids changed differently on both sides."""

    files: dict[str, bytes] = field(default_factory=dict)
    shards: tuple[Shard, ...] = ()
    count: int = 0
    digest: str = ""
    conflicts: tuple[str, ...] = ()


def lines_of(files: Files) -> list[bytes]:
    """A split's lines (without newlines) from its files, read one after another."""
    return [line for data in files.values() for line in split_lines(data)]


def merge_split(
    split: str, base: Files, ours: Files, theirs: Files, rule: ShardRule | None = None
) -> MergedSplit:
    """Merge a split's three versions by id and cut the result into shards by ``rule``."""
    merged = merge_lines(lines_of(base), lines_of(ours), lines_of(theirs))
    if merged.conflicts:
        return MergedSplit(conflicts=tuple(merged.conflicts))
    content = Split.from_terminated(merged.lines, rule or shards_module.RULE)
    files = {name: b"".join(chunks) for name, chunks in content.files(split)}
    return MergedSplit(files, content.shards, content.count, content.digest)


def git_outcome(
    base: Files, ours: Files, theirs: Files, driver: Callable[[str], bytes | None]
) -> dict[str, bytes] | None:
    """The files Git's file-by-file merge leaves of a split, ``driver`` giving what the
    merge driver writes for a file both sides changed (None: it cannot say). None when Git
    stops: a file one side removed and the other changed, or one the driver cannot give."""
    out = {}
    for name in sorted({*base, *ours, *theirs}):
        b, o, t = base.get(name), ours.get(name), theirs.get(name)
        if o == t or b == t:
            value = o
        elif b == o:
            value = t
        elif o is None or t is None or (value := driver(name)) is None:
            return None  # a file one side removed and the other changed, or not the driver's
        if value is not None:
            out[name] = value
    return out


def merge_in_git(
    split: str, base: Files, ours: Files, theirs: Files, rule: ShardRule | None = None
) -> MergedSplit | str:
    """``merge_split``, when Git's file-by-file merge can leave exactly its files; else a
    sentence saying why not."""
    merged = merge_split(split, base, ours, theirs, rule)
    if merged.conflicts:
        return f"split {split} has conflicts: " + ", ".join(merged.conflicts[:10])
    if git_outcome(base, ours, theirs, merged.files.get) != merged.files:
        return (
            f"split {split}: the merged resources are cut into shards that Git's file by file "
            "merge cannot leave; relock to finish the merge"
        )
    return merged
