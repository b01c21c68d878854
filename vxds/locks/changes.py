"""The values a lock diff is made of: changes, header changes, leak warnings, counts.

The kinds are ``Literal`` types, so strict mypy checks every kind string a diff is built
from or compared with. Nothing here reads a lock; ``locks.diff`` fills these in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from vxds.resource import lookup

ChangeKind = Literal["added", "removed", "changed", "metadata", "moved"]
Status = Literal["added", "removed", "changed", "unchanged"]  # of a dataset as a whole
LeakKind = Literal["group-in-two-splits", "held-out-to-training"]
# The new lock's freshness, as 'vxds list' says it, and a frozen lock that was changed.
State = Literal["fresh", "stale", "missing", "merged", "frozen", "frozen-changed"]
FAILING_STATES: tuple[State, ...] = ("stale", "missing", "frozen-changed")

ADDED: Final = "added"
REMOVED: Final = "removed"
CHANGED: Final = "changed"
METADATA: Final = "metadata"
MOVED: Final = "moved"
KINDS: tuple[ChangeKind, ...] = (ADDED, REMOVED, CHANGED, METADATA, MOVED)
GROUP_IN_TWO_SPLITS: Final = "group-in-two-splits"
HELD_OUT_TO_TRAINING: Final = "held-out-to-training"

Record = dict[str, Any]


def field_value(record: Record | None, name: str) -> Any:
    """A changed field's value: ``attrs.NAME`` is the attr called NAME (dots and all)."""
    if record is None:
        return None
    if name.startswith("attrs."):
        return (record.get("attrs") or {}).get(name.removeprefix("attrs."))
    return record.get(name)


@dataclass(frozen=True)
class Change:
    """One resource that differs. ``split`` is where it is now (where it was, if removed)."""

    id: str
    kind: ChangeKind
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
            out["values"] = {name: {"old": old, "new": new} for name, old, new in self.values()}
        if self.old is not None:
            out["old"] = self.old
        if self.new is not None:
            out["new"] = self.new
        return out

    def values(self) -> list[tuple[str, Any, Any]]:
        """Each changed field with its old and new value (``None`` where a side lacks it)."""
        return [(name, field_value(self.old, name), field_value(self.new, name)) for name in self.fields]


@dataclass(frozen=True)
class HeaderChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Leak:
    """A warning: ``subject`` (an id, or a group key as JSON) crosses splits it should not.

    ``value`` is the group's own value (a string, a number ...), for JSON; ``None`` for an id.
    """

    kind: LeakKind
    subject: str
    splits: tuple[str, ...]
    message: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject if self.value is None else self.value,
            "splits": list(self.splits),
            "message": self.message,
        }


@dataclass(frozen=True)
class MoveGroup:
    """The resources of one ``group_by`` value that moved from one split to another together."""

    value: Any
    from_split: str
    to_split: str
    ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"group": self.value, "from": self.from_split, "to": self.to_split, "ids": list(self.ids)}


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
    status: Status
    old_label: str | None = None
    new_label: str | None = None
    header: list[HeaderChange] = field(default_factory=list)
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[Leak] = field(default_factory=list)
    group_by: str | None = None  # the manifest entry's, to group moves by
    state: State | None = None  # the new lock's freshness (no recipe run); None: not checked
    reasons: tuple[str, ...] = ()  # why it is not fresh

    @property
    def needs_relock(self) -> bool:
        """The new side's lock is stale, missing, or a frozen lock that changed."""
        return self.state in FAILING_STATES

    def counts(self) -> dict[str, int]:
        """Changes by kind, and the resources left as they were (``unchanged``)."""
        tally = Counter(change.kind for change in self.changes)
        return {**{kind: tally[kind] for kind in KINDS}, "unchanged": self.unchanged}

    def move_groups(self) -> list[MoveGroup]:
        """Moves by the ``group_by`` value of the moved resource (none without ``group_by``)."""
        if self.group_by is None:
            return []
        groups: dict[tuple[str, str, str], tuple[Any, list[str]]] = {}
        for c in self.changes:
            if c.kind == MOVED:
                value = lookup(c.new or {}, self.group_by)
                key = (orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode(), str(c.from_split), c.split)
                groups.setdefault(key, (value, []))[1].append(c.id)
        return [MoveGroup(value, key[1], key[2], tuple(ids)) for key, (value, ids) in sorted(groups.items())]

    @property
    def empty(self) -> bool:
        return not self.changes and not self.header and self.status == "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "status": self.status,
            "state": self.state,
            "reasons": list(self.reasons),
            "old": self.old_label,
            "new": self.new_label,
            "summary": self.counts(),
            "header": [{"field": h.field, "old": h.old, "new": h.new} for h in self.header],
            "splits": {
                name: {"old": c.old, "new": c.new, "by": c.by} for name, c in sorted(self.splits.items())
            },
            "changes": [change.to_json() for change in self.changes],
            "moves": [group.to_json() for group in self.move_groups()],
            "warnings": [w.to_json() for w in self.warnings],
        }
