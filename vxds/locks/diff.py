"""What changed between two locks: a merge-join over their sorted lines, by id.

Both sides are streamed split by split; only the lines that differ are parsed and kept, so
two locks of a million resources are compared in the memory of their differences. Equal
lines are the common case and cost one byte comparison.

A resource is *added* or *removed*; *changed* when its type, version, hash, size or uri
differs; *metadata* when only its attrs differ; *moved* when its id left one split and
appeared in another. Headers are compared too (recipe, params, source, snapshot), and two
kinds of leak are reported as warnings: a ``group_by`` key in two splits of the new lock,
and an id or group that was held out (``test``, ``val``, ...) before and is trained on now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from vxds.errors import LockError
from vxds.hashing import canonical_json
from vxds.locks.format import Header
from vxds.locks.refs import LockRef, Side
from vxds.locks.splits import split_file
from vxds.locks.store import Lock
from vxds.project.manifest import DEFAULT_HELD_OUT
from vxds.resource import lookup

ADDED, REMOVED, CHANGED, METADATA, MOVED = "added", "removed", "changed", "metadata", "moved"
KINDS = (ADDED, REMOVED, CHANGED, METADATA, MOVED)
HELD_OUT: tuple[str, ...] = DEFAULT_HELD_OUT
CONTENT_FIELDS = ("type", "version", "hash", "size", "uri")
TYPE = "type"

Record = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One resource that differs. ``split`` is where it is now (where it was, if removed)."""

    id: str
    kind: str
    split: str
    old: Record | None = None
    new: Record | None = None
    fields: tuple[str, ...] = ()  # for changed/metadata/moved: what differs (attrs.x for attrs)
    from_split: str | None = None  # moved: the split it left

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.kind == MOVED:
            out["from"], out["to"] = self.from_split, self.split
        else:
            out["split"] = self.split
        if self.kind in (CHANGED, METADATA, MOVED):
            out["fields"] = list(self.fields)
        if self.old is not None:
            out["old"] = self.old
        if self.new is not None:
            out["new"] = self.new
        return out


@dataclass(frozen=True)
class HeaderChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Leak:
    """A warning: ``subject`` (an id, or a group key as JSON) crosses splits it should not."""

    kind: str  # "group-in-two-splits" or "held-out-to-training"
    subject: str
    splits: tuple[str, ...]
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "splits": list(self.splits),
            "message": self.message,
        }


@dataclass
class SplitCounts:
    """Per split: resources before and after, and counts by type and chosen fields."""

    old: int = 0
    new: int = 0
    by: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # field -> value -> [old, new]


@dataclass
class DatasetDiff:
    name: str
    old_version: int | None
    new_version: int | None
    status: str  # added, removed, changed, unchanged
    old_label: str | None = None
    new_label: str | None = None
    header: list[HeaderChange] = field(default_factory=list)
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[Leak] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        tally = Counter(change.kind for change in self.changes)
        return {**{kind: tally[kind] for kind in KINDS}, "unchanged": self.unchanged}

    @property
    def empty(self) -> bool:
        return not self.changes and not self.header and self.status == "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "status": self.status,
            "old": self.old_label,
            "new": self.new_label,
            "summary": self.counts(),
            "header": [{"field": h.field, "old": h.old, "new": h.new} for h in self.header],
            "splits": {
                name: {"old": c.old, "new": c.new, "by": c.by} for name, c in sorted(self.splits.items())
            },
            "changes": [change.to_json() for change in self.changes],
            "warnings": [w.to_json() for w in self.warnings],
        }


# --- reading lines -----------------------------------------------------------------------


def type_of(line: bytes) -> str:
    """A canonical line's ``type`` without parsing it.

    Keys are sorted, so the top-level ``"type"`` comes after ``attrs`` and is followed only
    by ``uri`` and ``version``: the last ``,"type":"`` is it (a quote inside a JSON string is
    always escaped, so the pattern cannot occur inside one).
    """
    start = line.rfind(b',"type":"')
    if start >= 0:
        start += 9
        end = line.find(b'"', start)
        value = line[start:end]
        if b"\\" not in value:
            return value.decode()
    return str(orjson.loads(line).get(TYPE))


def shown(value: Any) -> str:
    """A field value as a table or JSON key: strings as they are, others as JSON."""
    return value if isinstance(value, str) else canonical_json(value).decode()


def group_key(value: Any) -> Any:
    """A group_by value as a set member: strings as they are, others as canonical JSON bytes,
    so that ``True`` and ``1`` (equal in Python) stay different groups."""
    return value if type(value) is str else canonical_json(value)


def _show_key(key: Any) -> str:
    return (canonical_json(key) if isinstance(key, str) else key).decode()


class _Tally:
    """Counts of one side of one split by type and chosen fields; group keys if asked."""

    def __init__(self, fields: Sequence[str], group_by: str | None) -> None:
        self.count = 0
        self.types: Counter[str] = Counter()
        self.fields = [f for f in fields if f != TYPE]
        self.by: dict[str, Counter[str]] = {f: Counter() for f in self.fields}
        self.group_by = group_by
        self.groups: dict[Any, str] = {}  # group key -> an id in it
        self.parse = bool(self.fields) or group_by is not None

    def add(self, line: bytes, record: Record | None) -> None:
        self.count += 1
        self.types[type_of(line) if record is None else str(record.get(TYPE))] += 1
        if not self.parse:
            return
        if record is None:
            record = orjson.loads(line)
        for name, counter in self.by.items():
            counter[shown(lookup(record, name))] += 1
        if self.group_by is not None:
            key = lookup(record, self.group_by)
            if key is not None:
                self.groups.setdefault(group_key(key), record["id"])


def _content_fields(old: Record, new: Record) -> tuple[str, ...]:
    return tuple(f for f in CONTENT_FIELDS if old.get(f) != new.get(f))


def _attr_fields(old: Record, new: Record) -> tuple[str, ...]:
    a, b = old.get("attrs") or {}, new.get("attrs") or {}
    return tuple(f"attrs.{k}" for k in sorted(set(a) | set(b)) if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()


def _classify(split: str, old: Record, new: Record) -> Change:
    content = _content_fields(old, new)
    kind = CHANGED if content else METADATA
    return Change(old["id"], kind, split, old, new, content + _attr_fields(old, new))


def _join(
    split: str, old_lines: Iterator[bytes], new_lines: Iterator[bytes], old: _Tally, new: _Tally
) -> tuple[list[Change], int]:
    """Merge-join one split's sorted lines; return what differs and how many are equal."""
    changes: list[Change] = []
    unchanged = 0
    both: Counter[str] = Counter()  # types of equal lines, added to both tallies at the end
    parse_equal = old.parse or new.parse
    x, y = next(old_lines, None), next(new_lines, None)
    while x is not None and y is not None:
        if x == y:
            unchanged += 1
            if parse_equal:
                record = orjson.loads(x)
                old.add(x, record)
                new.add(y, record)
            else:
                both[type_of(x)] += 1
            x, y = next(old_lines, None), next(new_lines, None)
            continue
        a, b = orjson.loads(x), orjson.loads(y)
        if a["id"] < b["id"]:
            changes.append(Change(a["id"], REMOVED, split, old=a))
            old.add(x, a)
            x = next(old_lines, None)
        elif b["id"] < a["id"]:
            changes.append(Change(b["id"], ADDED, split, new=b))
            new.add(y, b)
            y = next(new_lines, None)
        else:
            changes.append(_classify(split, a, b))
            old.add(x, a)
            new.add(y, b)
            x, y = next(old_lines, None), next(new_lines, None)
    while x is not None:
        a = orjson.loads(x)
        changes.append(Change(a["id"], REMOVED, split, old=a))
        old.add(x, a)
        x = next(old_lines, None)
    while y is not None:
        b = orjson.loads(y)
        changes.append(Change(b["id"], ADDED, split, new=b))
        new.add(y, b)
        y = next(new_lines, None)
    for tally in (old, new):
        tally.count += unchanged if not parse_equal else 0
        tally.types.update(both)
    return changes, unchanged


def _moves(changes: list[Change]) -> list[Change]:
    """Pair a removal in one split with an addition of the same id in another: a move."""
    removed = {c.id: c for c in changes if c.kind == REMOVED}
    moved: dict[str, Change] = {}
    for c in changes:
        if c.kind == ADDED and c.id in removed:
            gone = removed[c.id]
            assert gone.old is not None and c.new is not None
            fields = _content_fields(gone.old, c.new) + _attr_fields(gone.old, c.new)
            moved[c.id] = Change(c.id, MOVED, c.split, gone.old, c.new, fields, from_split=gone.split)
    if not moved:
        return changes
    kept = [c for c in changes if not (c.id in moved and c.kind in (ADDED, REMOVED))]
    return kept + sorted(moved.values(), key=lambda c: c.id)


# --- headers and leaks -------------------------------------------------------------------

HEADER_FIELDS: tuple[tuple[str, Callable[[Header], Any]], ...] = (
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


def _group_leaks(group_by: str, tallies: Mapping[str, _Tally]) -> list[Leak]:
    seen: dict[Any, list[str]] = {}
    for split in sorted(tallies):
        for key in tallies[split].groups:
            seen.setdefault(key, []).append(split)
    return [
        Leak(
            "group-in-two-splits",
            _show_key(key),
            tuple(splits),
            f"{group_by} {_show_key(key)} is in splits {', '.join(splits)}",
        )
        for key, splits in sorted(seen.items(), key=lambda kv: _show_key(kv[0]))
        if len(splits) > 1
    ]


def _held_out_leaks(
    held_out: Sequence[str],
    changes: Iterable[Change],
    group_by: str | None,
    old: Mapping[str, _Tally],
    new: Mapping[str, _Tally],
) -> list[Leak]:
    """Ids, and groups, that were in a held-out split before and are in a training split now.

    With ``group_by``, an id is reported through its group only.
    """
    leaks: list[Leak] = []
    leaked: set[Any] = set()
    if group_by is not None:
        for before in sorted(s for s in old if s in held_out):
            for after in sorted(s for s in new if s not in held_out):
                for key in sorted(set(old[before].groups) & set(new[after].groups), key=_show_key):
                    leaked.add(key)
                    shown_key = _show_key(key)
                    message = f"{group_by} {shown_key} was in held-out split {before} and is now in {after}"
                    leaks.append(Leak("held-out-to-training", shown_key, (before, after), message))
    for c in changes:
        if c.kind != MOVED or c.from_split not in held_out or c.split in held_out:
            continue
        if group_by is not None and c.old is not None and _key_of(c.old, group_by) in leaked:
            continue
        message = f"{c.id} was in held-out split {c.from_split} and is now in {c.split}"
        leaks.append(Leak("held-out-to-training", c.id, (str(c.from_split), c.split), message))
    return leaks


def _key_of(record: Record, group_by: str) -> Any:
    value = lookup(record, group_by)
    return None if value is None else group_key(value)


# --- the comparison ----------------------------------------------------------------------


@contextmanager
def _no_lines() -> Iterator[Iterator[bytes]]:
    yield iter(())


def _status(old: LockRef | None, new: LockRef | None, differs: bool) -> str:
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
    status: str | None = None,
) -> DatasetDiff:
    """Compare two locks (either may be absent) split by split."""
    ref = new if new is not None else old
    assert ref is not None
    fields = tuple(dict.fromkeys((TYPE, *by)))
    names = sorted(set(old.splits if old else ()) | set(new.splits if new else ()))
    old_tallies = {s: _Tally(fields, group_by if s in held_out else None) for s in names}
    new_tallies = {s: _Tally(fields, group_by) for s in names}
    changes: list[Change] = []
    unchanged = 0
    for split in names:
        with ExitStack() as stack:
            a = stack.enter_context(old.lines(split) if old and split in old.splits else _no_lines())
            b = stack.enter_context(new.lines(split) if new and split in new.splits else _no_lines())
            try:
                found, same = _join(split, a, b, old_tallies[split], new_tallies[split])
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise _bad_line(split, old, new, exc) from None
        changes += found
        unchanged += same
    changes = _moves(changes)
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
    )
    if new is not None:
        if group_by is not None:
            result.warnings += _group_leaks(group_by, {s: t for s, t in new_tallies.items() if t.count})
        result.warnings += _held_out_leaks(
            held_out, changes, group_by, {s: t for s, t in old_tallies.items() if t.count}, new_tallies
        )
    return result


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
                    where = ref.label if ref.header is None else f"{ref.label}/{split_file(split)}"
                    return LockError(
                        f"{where}:{number}: not a resource record",
                        hint="run 'vxds verify' on the lock, relock it or restore it from Git",
                    )
    return LockError(f"split {split}: unreadable lock line ({exc})")


def _counts(old: _Tally, new: _Tally, fields: Sequence[str]) -> SplitCounts:
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


# --- applying a diff ---------------------------------------------------------------------


def apply(old: Mapping[str, Sequence[Record]], changes: Iterable[Change]) -> dict[str, list[Record]]:
    """The new lock's records per split, from the old one's and the changes between them."""
    splits = {name: {r["id"]: r for r in records} for name, records in old.items()}
    for c in changes:
        if c.kind in (REMOVED, MOVED):
            del splits[c.from_split if c.kind == MOVED else c.split][c.id]  # type: ignore[index]
        if c.kind != REMOVED:
            assert c.new is not None
            splits.setdefault(c.split, {})[c.id] = c.new
    return {name: [records[k] for k in sorted(records)] for name, records in splits.items()}


# --- two sides ---------------------------------------------------------------------------


def pairs(old: Side, new: Side) -> list[tuple[LockRef | None, LockRef | None, str | None]]:
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
    out: list[tuple[LockRef | None, LockRef | None, str | None]] = []
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
