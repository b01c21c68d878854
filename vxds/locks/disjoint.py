"""The ``disjoint_by`` claim of a lock header: a field no value of which is in two splits.

``vxds lock`` refuses a lock with a ``group_by`` value in two splits (``recipes.checker``),
so a lock it writes for an entry with a ``group_by`` (and no ``allow_group_overlap``) is
disjoint by that field. It says so in ``lock.toml`` (``[lock] disjoint_by``) when the fact
saves a reader work (``claimed``): two or more non-empty splits, one of several shards. The
lock digest covers the claim when it is there (``format.Header.body``); a diff trusts it
(``claims``: no equal shard is read for group keys, ``locks.diff``), ``vxds verify`` checks
it (VX403) and the merge driver keeps it only where it follows from a side's
(``merged_claim``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from vxds.locks.format import Header


def claimed(header: Header, group_by: str | None, allow_overlap: bool) -> Header:
    """``header`` with the claim a lock checked against ``group_by`` makes (see the module)."""
    filled = [name for name, (count, _) in header.splits.items() if count]
    if group_by is None or allow_overlap or len(filled) < 2 or not header.shards:
        return replace(header, disjoint_by=None)
    return replace(header, disjoint_by=group_by)


class HasHeader(Protocol):
    @property
    def header(self) -> Header | None: ...


def claims(ref: HasHeader | None, group_by: str) -> bool:
    """Whether a side of a diff is disjoint by ``group_by`` as its header says (no lock on
    that side: it holds no value at all, so yes)."""
    return ref is None or (ref.header is not None and ref.header.disjoint_by == group_by)


def merged_claim(ours: Header, theirs: Header, merged: Header) -> str | None:
    """The claim of a merged header: a side's when the merge holds exactly that side's
    resources (every split's count and digest as that side has them), else none. A merge of
    two disjoint sides need not be disjoint (one side moves a subject to test while the
    other adds a resource of it to train), and proving it would read every changed shard;
    without the claim a diff reads the equal shards, as for a lock of the last stop."""
    for side in (ours, theirs):
        if side.disjoint_by is not None and dict(side.splits) == dict(merged.splits):
            return side.disjoint_by
    return None
