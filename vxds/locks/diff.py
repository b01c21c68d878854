"""What changed between two locks: split by split, header by header, and what leaked.

Both sides are streamed split by split (``split_diff.join``, a merge-join over sorted
lines); only the lines that differ are parsed and kept, so two locks of a million resources
are compared in the memory of their differences. Headers are compared too (recipe, params,
source, snapshot), and leaks between splits are reported as warnings (``leaks``). The values
a diff is made of (``Change``, ``DatasetDiff`` ...) are defined in ``changes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson

from vxds.errors import LockError
from vxds.locks.changes import Change, DatasetDiff, HeaderChange, Leak, SplitCounts, Status
from vxds.locks.disjoint import claims
from vxds.locks.format import Header
from vxds.locks.leaks import group_leaks, held_out_leaks
from vxds.locks.refs import LockRef, Side
from vxds.locks.shard_join import join_shards
from vxds.locks.shards import file_line
from vxds.locks.split_diff import TYPE, Tally, join, moves
from vxds.locks.store import Lock
from vxds.project.manifest import DEFAULT_HELD_OUT

HELD_OUT: tuple[str, ...] = DEFAULT_HELD_OUT

HEADER_FIELDS: tuple[tuple[str, Callable[[Header], Any]], ...] = (
    ("format", lambda h: h.format),  # 1 -> 2 of the same resources is this change alone
    ("script", lambda h: h.script),
    ("entrypoint", lambda h: h.entrypoint),
    ("params", lambda h: dict(h.params)),
    ("recipe_digest", lambda h: h.recipe_digest),
    ("entry_digest", lambda h: h.entry_digest),
    ("source", lambda h: h.source),
    ("snapshot", lambda h: h.snapshot),
    ("merged", lambda h: h.merged),
)


def header_changes(old: Header | None, new: Header | None) -> list[HeaderChange]:
    if old is None or new is None:
        return []
    return [HeaderChange(name, get(old), get(new)) for name, get in HEADER_FIELDS if get(old) != get(new)]


# --- the comparison ----------------------------------------------------------------------


@contextmanager
def _no_lines() -> Iterator[Iterator[bytes]]:
    yield iter(())


def _status(old: LockRef | None, new: LockRef | None, differs: bool) -> Status:
    if new is None:
        return "removed"
    if old is None:
        return "added"
    return "changed" if differs else "unchanged"


def diff_refs(
    old: LockRef | None,
    new: LockRef | None,
    *,
    by: Sequence[str] = (),
    group_by: str | None = None,
    held_out: Sequence[str] = HELD_OUT,
    status: Status | None = None,
) -> DatasetDiff:
    """Compare two locks (either may be absent) split by split."""
    ref = new if new is not None else old
    assert ref is not None
    fields = tuple(dict.fromkeys((TYPE, *by)))
    names = sorted(set(old.splits if old else ()) | set(new.splits if new else ()))
    old_groups, new_groups = _group_needs(old, new, names, held_out) if group_by else (set(), set())
    old_tallies = {s: Tally(fields, group_by if s in old_groups else None) for s in names}
    new_tallies = {s: Tally(fields, group_by if s in new_groups else None) for s in names}
    disjoint = group_by is not None and claims(old, group_by) and claims(new, group_by)
    changes, unchanged = _join_splits(old, new, old_tallies, new_tallies, disjoint)
    header = header_changes(old.header if old else None, new.header if new else None)
    result = DatasetDiff(
        name=ref.name,
        old_version=old.version if old else None,
        new_version=new.version if new else None,
        status=status or _status(old, new, bool(changes or header)),
        old_label=old.label if old else None,
        new_label=new.label if new else None,
        header=header,
        changes=changes,
        unchanged=unchanged,
        splits={s: _counts(old_tallies[s], new_tallies[s], fields) for s in names},
        group_by=group_by,
    )
    if new is not None:
        result.warnings += _warnings(changes, group_by, held_out, old_tallies, new_tallies)
    return result


def _count(ref: LockRef | None, split: str) -> int:
    """The split's count as the header says (a bare file's: unknown, taken as not empty)."""
    if ref is None or split not in ref.splits:
        return 0
    return ref.header.splits[split][0] if ref.header is not None else 1


def _group_needs(
    old: LockRef | None, new: LockRef | None, names: Sequence[str], held_out: Sequence[str]
) -> tuple[set[str], set[str]]:
    """The splits of each side whose group keys a leak warning can depend on (``_warnings``):
    on the new side every non-empty split when two or more are, and its training splits when
    the old side has a non-empty held-out split; on the old side those held-out splits, when
    the new side has a non-empty training split. A lock of one split tallies no group."""
    filled = [s for s in names if _count(new, s)]
    training = {s for s in filled if s not in held_out}
    held = {s for s in names if s in held_out and _count(old, s)}
    new_groups = (set(filled) if len(filled) > 1 else set()) | (training if held else set())
    return (held if training else set()), new_groups


def _join_splits(
    old: LockRef | None,
    new: LockRef | None,
    old_tallies: dict[str, Tally],
    new_tallies: dict[str, Tally],
    disjoint: bool,
) -> tuple[list[Change], int]:
    """Every split's changes (moves between splits paired up) and how many lines are equal.

    ``disjoint``: both sides claim to be disjoint by the diff's ``group_by``
    (``locks.disjoint``), so the group keys of equal lines (and equal shards) are not
    tallied: the warnings come out the same from the keys of the resources that changed.
    No group is in two splits of the new lock, so ``group_leaks`` finds none either way. A
    key ``k`` in held-out split ``h`` of the old lock and training split ``t`` of the new one
    is, on the old side, in ``h`` only; a resource of ``h`` with key ``k`` left unchanged
    would put ``k`` in ``h`` of the new lock too, beside ``t``, so every such resource changed
    (removed, moved or given another key): its old line is not an equal line. Likewise each
    resource of ``t`` with key ``k`` in the new lock is new there or changed. So ``k`` is
    found from the changed resources on both sides, and every key tallied is truly in its
    split: ``held_out_leaks`` finds exactly the same keys.
    """
    changes: list[Change] = []
    unchanged = 0
    for split in old_tallies:
        shard_wise = join_shards(split, old, new, old_tallies[split], new_tallies[split], disjoint)
        if shard_wise is not None:  # equal shards skipped
            changes += shard_wise[0]
            unchanged += shard_wise[1]
            continue
        with ExitStack() as stack:
            a = stack.enter_context(old.lines(split) if old and split in old.splits else _no_lines())
            b = stack.enter_context(new.lines(split) if new and split in new.splits else _no_lines())
            try:
                found, same = join(split, a, b, old_tallies[split], new_tallies[split], not disjoint)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise _bad_line(split, old, new, exc) from None
        changes += found
        unchanged += same
    return moves(changes), unchanged


def _warnings(
    changes: list[Change],
    group_by: str | None,
    held_out: Sequence[str],
    old_tallies: dict[str, Tally],
    new_tallies: dict[str, Tally],
) -> list[Leak]:
    warnings = []
    if group_by is not None:
        warnings += group_leaks(group_by, {s: t.groups for s, t in new_tallies.items() if t.count})
    old_groups = {s: t.groups for s, t in old_tallies.items() if t.count}
    new_groups = {s: t.groups for s, t in new_tallies.items()}
    return warnings + held_out_leaks(held_out, changes, group_by, old_groups, new_groups)


def _bad_line(split: str, old: LockRef | None, new: LockRef | None, exc: Exception) -> LockError:
    """The first line of either side that is not a resource record, named by file and line."""
    for ref in (old, new):
        if ref is None or split not in ref.splits:
            continue
        with ref.lines(split) as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    record = orjson.loads(line)
                    if not isinstance(record, dict) or not isinstance(record["id"], str):
                        raise TypeError("no id")
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    where, number = _file_line(ref, split, number)
                    return LockError(
                        f"{where}:{number}: not a resource record",
                        hint="run 'vxds verify' on the lock, relock it or restore it from Git",
                    )
    return LockError(f"split {split}: unreadable lock line ({exc})")


def _file_line(ref: LockRef, split: str, number: int) -> tuple[str, int]:
    """Where the split's ``number``-th line is (a shard's file, for a split of several)."""
    if ref.header is None:
        return ref.label, number
    file, line = file_line(ref.header, split, number)
    return f"{ref.label}/{file}", line


def _counts(old: Tally, new: Tally, fields: Sequence[str]) -> SplitCounts:
    by: dict[str, dict[str, list[int]]] = {}
    for name in fields:
        before = old.types if name == TYPE else old.by[name]
        after = new.types if name == TYPE else new.by[name]
        by[name] = {value: [before[value], after[value]] for value in sorted(set(before) | set(after))}
    return SplitCounts(old.count, new.count, by)


def lock_ref(lock: Lock, label: str = "") -> LockRef:
    """An in-memory lock as something ``diff_refs`` can stream."""

    @contextmanager
    def lines(split: str) -> Iterator[Iterator[bytes]]:
        yield lock.splits[split].lines()

    header = lock.header
    return LockRef(
        header.name, header.version, label or header.key, header, tuple(sorted(lock.splits)), lines
    )


def diff_locks(old: Lock | None, new: Lock | None, **options: Any) -> DatasetDiff:
    """Compare two in-memory locks."""
    return diff_refs(lock_ref(old) if old else None, lock_ref(new) if new else None, **options)


# --- two sides ---------------------------------------------------------------------------


def pairs(old: Side, new: Side) -> list[tuple[LockRef | None, LockRef | None, Status | None]]:
    """Which lock is compared with which: the same ``name@version`` on both sides; a version
    only in NEW with the highest earlier version of its dataset in OLD (status ``added``);
    two locks named one each, with each other."""
    if old.single and new.single and len(old.locks) == 1 and len(new.locks) == 1:
        return [(next(iter(old.locks.values())), next(iter(new.locks.values())), None)]
    names = None
    for side in (old, new):
        if side.single:
            names = {name for name, _ in side.locks}
    keys = sorted(
        (k for k in set(old.locks) | set(new.locks) if names is None or k[0] in names),
        key=lambda k: (k[0], k[1] or 0),
    )
    out: list[tuple[LockRef | None, LockRef | None, Status | None]] = []
    for key in keys:
        a, b = old.locks.get(key), new.locks.get(key)
        if a is None and b is not None and b.version is not None:
            earlier = [r for (name, v), r in old.locks.items() if name == key[0] and (v or 0) < b.version]
            if earlier:
                out.append((max(earlier, key=lambda r: r.version or 0), b, "added"))
                continue
        out.append((a, b, None))
    return out


def diff_sides(old: Side, new: Side, *, by: Sequence[str] = ()) -> list[DatasetDiff]:
    """Every dataset version that is on either side, compared."""
    results = []
    for a, b, status in pairs(old, new):
        ref = b if b is not None else a
        assert ref is not None
        entry = new.entry(ref.name, ref.version) or old.entry(ref.name, ref.version)
        results.append(
            diff_refs(
                a,
                b,
                by=by,
                group_by=entry.group_by if entry else None,
                held_out=entry.held_out if entry else HELD_OUT,
                status=status,
            )
        )
    return results


# The values a diff returns, importable with the functions that return them.
__all__ = [
    "HELD_OUT",
    "Change",
    "DatasetDiff",
    "HeaderChange",
    "Leak",
    "SplitCounts",
    "Status",
    "diff_locks",
    "diff_refs",
    "diff_sides",
    "header_changes",
    "lock_ref",
    "pairs",
]
