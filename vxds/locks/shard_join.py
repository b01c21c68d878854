"""The diff of one split, shard by shard: shards both sides list with the same file and
digest are equal and are not read; only the runs of shards between them are merge-joined.

Two shards with one file name start at one id, and with one digest hold the same lines, so
every line before such a shard is below its first id on both sides and every line after it
above its last: the join of the whole split is the joins of the runs between equal shards,
plus the equal shards' lines as unchanged. What a diff tallies of an equal shard is its
count by type, which ``lock.toml`` lists for each shard of a lock written since it does
(``Shard.types``); the ``--by`` fields and the group keys leak checks need, or the types of
a lock that lists none, come from a cache keyed by shard digest under ``.vxds/``
(``ShardTypes``): a shard not in it yet is read once.

A split is joined whole, as before, when either side is not sharded the same way (format 1,
a bare split file, an in-memory lock) or no shard is equal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from vxds.fs import JsonCache
from vxds.locks.changes import Change
from vxds.locks.shards import HasShards, listed_files, shard_file
from vxds.locks.split_diff import TYPE, Tally, join

FileLines = Callable[[str, tuple[int, str]], AbstractContextManager[Iterator[bytes]]]
CACHE_VERSION = 1


class ShardTypes:
    """What a diff tallies of each shard (count by type, by ``--by`` field, group keys), by
    shard digest and what is tallied, in ``.vxds/shard-tallies``."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.path = None if cache_dir is None else cache_dir / "shard-tallies"

    @functools.cached_property
    def cache(self) -> JsonCache:
        """Read when a tally is first looked up: a diff the header's types serve never reads it."""
        return JsonCache(self.path, CACHE_VERSION)

    @property
    def types(self) -> dict[str, Any]:
        return self.cache.table("tallies")

    def get(self, digest: str, like: Tally, read: Callable[[], Iterator[bytes]]) -> Tally:
        """A tally like ``like`` (its fields and group_by) of the shard with ``digest``."""
        key = orjson.dumps([digest, like.fields, like.group_by]).decode()
        known = self.types.get(key)
        if isinstance(known, dict):
            try:
                return _loaded(like, known)
            except (KeyError, TypeError, ValueError):
                pass  # a damaged entry: tallied again
        tally = _fresh(like)
        for line in read():
            tally.add(line, None)
        self.types[key] = _saved(tally)
        self.cache.mark()
        return tally

    def save(self) -> None:
        if "cache" in self.__dict__:
            self.cache.save()


def _saved(tally: Tally) -> dict[str, Any]:
    groups = [
        [isinstance(k, bytes), k.decode() if isinstance(k, bytes) else k, rid]
        for k, rid in tally.groups.items()
    ]
    return {"count": tally.count, "types": tally.types, "by": tally.by, "groups": groups}


def _loaded(like: Tally, data: dict[str, Any]) -> Tally:
    tally = _fresh(like)
    tally.count = int(data["count"])
    tally.types.update(data["types"])
    for name in tally.fields:
        tally.by[name].update(data["by"][name])
    for is_bytes, key, rid in data["groups"]:
        tally.groups[key.encode() if is_bytes else key] = rid
    return tally


def absorb(into: Tally, part: Tally) -> None:
    """Add a tally of later lines to ``into``, as if ``into`` had tallied them."""
    into.count += part.count
    into.types.update(part.types)
    for name, counter in part.by.items():
        into.by[name].update(counter)
    for key, rid in part.groups.items():
        into.groups.setdefault(key, rid)


@functools.cache
def shard_types(cache_dir: Path | None) -> ShardTypes:
    """One cache per folder in a process, so both sides of a diff share (and save) it."""
    return ShardTypes(cache_dir)


@dataclass(frozen=True)
class Shards:
    """What one side of a diff offers for reading its split files one at a time."""

    header: HasShards
    read: FileLines
    types: ShardTypes


class Sided(Protocol):
    """A lock to diff that may offer its files one at a time (``refs.LockRef``)."""

    @property
    def shards(self) -> Shards | None: ...


def join_shards(
    split: str,
    old_ref: Sided | None,
    new_ref: Sided | None,
    old_tally: Tally,
    new_tally: Tally,
    disjoint: bool = False,
) -> tuple[list[Change], int] | None:
    """``split_diff.join`` of the split, skipping equal shards; None when it cannot skip (see
    the module docstring) or a line is not a resource (the caller's whole join then names it).
    ``disjoint``: the group keys of equal shards are not needed (``diff._join_splits``)."""
    old = old_ref.shards if old_ref is not None else None
    new = new_ref.shards if new_ref is not None else None
    if old is None or new is None:
        return None
    if split not in old.header.splits or split not in new.header.splits:
        return None
    a, b = listed_files(old.header, split), listed_files(new.header, split)
    in_b = set(b)
    equal = [item for item in a if item in in_b]
    if not equal:
        return None
    olds, news = _fresh(old_tally), _fresh(new_tally)
    try:
        changes, unchanged = _join_runs(split, old, new, (a, b), equal, (olds, news), disjoint)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    finally:
        new.types.save()
    absorb(old_tally, olds)
    absorb(new_tally, news)
    return changes, unchanged


Listed = list[tuple[str, tuple[int, str]]]


def _join_runs(
    split: str,
    old: Shards,
    new: Shards,
    files: tuple[Listed, Listed],
    equal: Listed,
    tallies: tuple[Tally, Tally],
    disjoint: bool,
) -> tuple[list[Change], int]:
    a, b = files
    at_a, at_b = {item: k for k, item in enumerate(a)}, {item: k for k, item in enumerate(b)}
    listed = {**_types(old.header, split), **_types(new.header, split)}
    changes: list[Change] = []
    unchanged = i = j = 0
    for anchor in [*equal, None]:
        ia = at_a[anchor] if anchor else len(a)
        jb = at_b[anchor] if anchor else len(b)
        if a[i:ia] or b[j:jb]:
            found, same = join(split, _lines(old, a[i:ia]), _lines(new, b[j:jb]), *tallies, not disjoint)
            changes += found
            unchanged += same
        if anchor is not None:
            for tally in tallies:
                _add_equal(tally, anchor, listed, new, disjoint)
            unchanged += anchor[1][0]
        i, j = ia + 1, jb + 1
    return changes, unchanged


Types = dict[str, tuple[tuple[str, int], ...]]


def _types(header: HasShards, split: str) -> Types:
    """The types each shard file of ``split`` lists in the header (none in an older lock)."""
    return {shard_file(split, s.first): s.types for s in header.shards.get(split, ()) if s.types}


def _add_equal(
    tally: Tally, anchor: tuple[str, tuple[int, str]], listed: Types, side: Shards, disjoint: bool
) -> None:
    """Add an equal shard to ``tally``: the types its header line lists when that is all
    ``tally`` counts (its group keys aside, when ``disjoint``), else its tally from the cache
    (the shard read once)."""
    name, (count, digest) = anchor
    types = listed.get(name)
    if tally.fields or (tally.group_by is not None and not disjoint) or types is None:
        absorb(tally, side.types.get(digest, tally, functools.partial(_lines, side, [anchor])))
        return
    tally.count += count
    counter = tally.types
    for kind, n in types:
        counter[kind] += n


def _lines(side: Shards, files: Listed) -> Iterator[bytes]:
    for name, listed in files:
        with side.read(name, listed) as lines:
            yield from lines


def _fresh(tally: Tally) -> Tally:
    return Tally((TYPE, *tally.fields), tally.group_by)
