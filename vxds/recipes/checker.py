"""A recipe's output checked: records normalised (or resolved against the source), and the
ways it breaks the rules collected to be reported at once (``_Checker``): invalid records,
duplicate ids, ids in two splits, NFC twins and (with ``group_by``) a group in two splits.
Lines are sorted in spilled runs (``vxds.recipes.spill``), so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from vxds.errors import NotFoundError, RecipeError
from vxds.hashing import canonical_json
from vxds.locks.splits import Split
from vxds.recipes import spill
from vxds.resource import (
    InvalidResource,
    Resource,
    check_id,
    lock_line,
    lookup,
    nfc_twins,
    normalize,
    plain_record,
)
from vxds.sources import Source

MAX_LISTED = 10


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _group_getter(group_by: str) -> Callable[[dict[str, Any]], Any]:
    head, _, rest = group_by.partition(".")
    if head == "attrs" and rest and "." not in rest:
        return lambda record: record["attrs"].get(rest)  # the common case, made cheap
    return lambda record: lookup(record, group_by)


def _checked_record(item: object) -> dict[str, Any] | None:
    """The record of a resource a source already validated, built without copying attrs.

    Serialising it re-checks the one thing that could have changed since (attrs' keys).
    """
    if type(item) is not Resource or not item._checked or type(item.attrs) is not dict:
        return None
    return {
        "attrs": item.attrs,
        "hash": item.hash,
        "id": item.id,
        "size": item.size,
        "type": item.type,
        "uri": item.uri,
        "version": item.version,
    }


_SEED_KEYS = frozenset({"id", "version"})


def _given(item: object) -> dict[str, Any] | None:
    """The fields a hashless record gives (None values and empty attrs left out), else None."""
    if isinstance(item, Resource):
        if item._checked:
            return None
        fields: Mapping[Any, Any] = item.to_record()
    elif isinstance(item, Mapping):
        fields = item
    else:
        return None
    if fields.get("hash") is not None or not isinstance(fields.get("id"), str) or "version" not in fields:
        return None
    return {k: v for k, v in fields.items() if v is not None and not (k == "attrs" and not v)}


def _in_source(source: Source, rid: str) -> bool:
    try:
        source.get(rid)
    except NotFoundError:
        return False
    return True


def from_source(item: object, source: Source | None, where: str) -> object:
    """A hashless record that names a source resource, as that resource; else ``item``.

    Raises a one-line ``RecipeError`` (``where`` and the record named) when the record is
    seed-style or names a source resource, and the source has no such version.
    """
    given = _given(item) if source is not None else None
    if source is None or given is None:
        return item
    rid, version = given["id"], given.get("version")
    try:
        check_id(rid)
    except InvalidResource:
        return item  # normalize() names what is wrong with the id
    try:
        found = source.get(rid, version)
    except NotFoundError as exc:
        if set(given) <= _SEED_KEYS or _in_source(source, rid):
            named = f"record {{'id': {rid!r}, 'version': {version!r}}}"
            raise RecipeError(
                f"{where}: {named} has no hash and the source does not hold it: {exc}"
            ) from None
        return item
    record = found.to_record()
    attrs = given.get("attrs")
    if isinstance(attrs, Mapping):
        record["attrs"] = {**record["attrs"], **attrs}
    for key in ("type", "uri"):
        if key in given:
            record[key] = given[key]
    return record


def _shown_key(key: Any) -> str:
    return (canonical_json(key) if isinstance(key, str) else key).decode()


@dataclass
class _Checker:
    """Collects the ways a recipe's output breaks the rules, to report them all at once."""

    group_by: str | None
    allow_group_overlap: bool
    source: Source | None = None
    invalid: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # records naming what the source lacks
    work: Path | None = None  # the workspace runs and split files are written in (``spill``)
    unicode: dict[str, list[str]] = field(default_factory=dict)  # split -> its non-ASCII ids
    groups: dict[str, dict[Any, str]] = field(default_factory=dict)  # split -> group key -> an id
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    def split(self, split: str, items: Iterable[object]) -> Split:
        """Validate one split's items; return them as a split of sorted canonical lines,
        sorted in runs spilled to the workspace (memory stays bounded, ``spill``)."""
        assert self.work is not None
        sorter = spill.Sorter(self.work, split)
        unicode = self.unicode.setdefault(split, [])
        check_groups = self.group_by is not None and not self.allow_group_overlap
        group_of = _group_getter(self.group_by) if self.group_by is not None and check_groups else None
        groups = self.groups.setdefault(split, {})
        hashless = self.source is None  # no source: a record without a hash is kept as it is
        for index, item in enumerate(items):
            try:
                if plain_record(item) and (hashless or item["hash"] is not None):
                    record = item  # what _resolve and normalize return for it, without the calls
                else:
                    record = _checked_record(item) or normalize(self._resolve(item, split, index))
                line = lock_line(record)
            except InvalidResource as exc:
                self.invalid.append(f"split {split!r}, item {index}: {exc}")
                continue
            rid = record["id"]
            sorter.add(rid, line, record["type"])
            if not rid.isascii():
                unicode.append(rid)
            if group_of is not None:
                key = group_of(record)
                if key is not None:
                    # Strings as they are, other values as canonical JSON bytes, so that
                    # True and 1 (equal in Python) stay different groups.
                    groups.setdefault(key if type(key) is str else canonical_json(key), rid)
        unicode.sort()
        built, repeated = spill.build(sorter.merged(), self.work, split, sorter.kinds)
        if repeated:
            self.duplicates[split] = repeated
        return built

    def _resolve(self, item: object, split: str, index: int) -> object:
        if type(item) is dict and item.get("hash") is not None:  # hashed: from_source keeps it
            return item
        try:
            return from_source(item, self.source, f"split {split!r}, item {index}")
        except RecipeError as exc:
            self.unresolved.append(str(exc))
            return item  # checked as it is, so that every other problem is found too

    def problems(self) -> list[str]:
        out = list((self.invalid + self.unresolved)[:MAX_LISTED])
        if len(self.invalid) + len(self.unresolved) > MAX_LISTED:
            out.append(f"... and {len(self.invalid) + len(self.unresolved) - MAX_LISTED} more invalid items")
        for split, ids in sorted(self.duplicates.items()):
            out.append(f"split {split!r} lists these ids more than once: {_listing(ids)}")
        twins = nfc_twins(chain.from_iterable(self.unicode[s] for s in sorted(self.unicode)))
        if twins:  # one name on macOS: one file would overwrite the other
            listed = [f"{a!r} and {b!r}" for a, b in twins]
            out.append(f"ids that are one name once Unicode-normalised (NFC): {_listing(listed)}")
        in_two = spill.shared_ids(self.work, sorted(self.unicode)) if self.work is not None else {}
        if in_two:
            listed = [f"{rid} ({', '.join(sorted(s))})" for rid, s in sorted(in_two.items())]
            out.append(f"ids in more than one split: {_listing(listed)}")
        leaks = _shared(self.groups)
        if leaks:
            listed = [
                f"{_shown_key(key)} ({', '.join(f'{s}: {self.groups[s][key]}' for s in sorted(splits))})"
                for key, splits in sorted(leaks.items(), key=lambda kv: _shown_key(kv[0]))
            ]
            out.append(f"group_by {self.group_by}: groups in more than one split: {_listing(listed)}")
        return out


def _shared(by_split: Mapping[str, Collection[Any]]) -> dict[Any, set[str]]:
    """Values found in more than one split, with the splits they are in."""
    shared: dict[Any, set[str]] = {}
    names = sorted(by_split)
    for n, first in enumerate(names):
        for second in names[n + 1 :]:
            small, large = sorted((by_split[first], by_split[second]), key=len)
            lookup_set = set(small)  # only the smaller side is held as a set
            for value in large:
                if value in lookup_set:
                    shared.setdefault(value, set()).update((first, second))
    return shared
