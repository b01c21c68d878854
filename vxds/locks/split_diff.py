"""The pure diff of one split: a merge-join over two sides' sorted lines, by id.

Only the lines that differ are parsed and kept; equal lines are the common case and cost
one byte comparison. A resource is *added* or *removed*; *changed* when its type, version,
hash, size or uri differs; *metadata* when only its attrs differ; *moved* when its id left
one split and appeared in another (``moves``, over the changes of every split). ``apply``
goes the other way: the new records from the old ones and the changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from vxds.hashing import canonical_json
from vxds.locks.changes import ADDED, CHANGED, METADATA, MOVED, REMOVED, Change, ChangeKind, Record
from vxds.resource import lookup

CONTENT_FIELDS = ("type", "version", "hash", "size", "uri")
TYPE = "type"
_MISSING = object()


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


class Tally:
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


def _classify(split: str, old: Record, new: Record) -> Change:
    content = _content_fields(old, new)
    kind: ChangeKind = CHANGED if content else METADATA
    return Change(old["id"], kind, split, old, new, content + _attr_fields(old, new))


def join(
    split: str,
    old_lines: Iterator[bytes],
    new_lines: Iterator[bytes],
    old: Tally,
    new: Tally,
    equal_groups: bool = True,
) -> tuple[list[Change], int]:
    """Merge-join one split's sorted lines; return what differs and how many are equal.
    Without ``equal_groups`` the group keys of equal lines are not tallied (a diff of two
    locks disjoint by the group: ``diff._join_splits``), so they are not parsed for them."""
    changes: list[Change] = []
    unchanged = 0
    both: Counter[str] = Counter()  # types of equal lines, added to both tallies at the end
    groups = equal_groups and (old.group_by is not None or new.group_by is not None)
    parse_equal = bool(old.fields or new.fields) or groups
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
    _rest(split, x, old_lines, old, REMOVED, changes)
    _rest(split, y, new_lines, new, ADDED, changes)
    for tally in (old, new):
        tally.count += unchanged if not parse_equal else 0
        tally.types.update(both)
    return changes, unchanged


def _rest(
    split: str, line: bytes | None, lines: Iterator[bytes], tally: Tally, kind: ChangeKind, out: list[Change]
) -> None:
    """The lines left on one side once the other is done: each removed (or added)."""
    while line is not None:
        record = orjson.loads(line)
        out.append(Change(record["id"], kind, split, **{"old" if kind == REMOVED else "new": record}))
        tally.add(line, record)
        line = next(lines, None)


def moves(changes: list[Change]) -> list[Change]:
    """Pair a removal in one split with an addition of the same id in another: a move."""
    removed = {c.id: c for c in changes if c.kind == REMOVED}
    moved: dict[str, Change] = {}
    for c in changes:
        if c.kind == ADDED and c.id in removed:
            gone = removed[c.id]
            assert gone.old is not None
            assert c.new is not None
            fields = _content_fields(gone.old, c.new) + _attr_fields(gone.old, c.new)
            moved[c.id] = Change(c.id, MOVED, c.split, gone.old, c.new, fields, from_split=gone.split)
    if not moved:
        return changes
    kept = [c for c in changes if not (c.id in moved and c.kind in (ADDED, REMOVED))]
    return kept + sorted(moved.values(), key=lambda c: c.id)


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
