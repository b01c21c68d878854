"""vxds/locks/shard_join.py: a diff of sharded locks reads only the shards that differ, and
says what the whole join says."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.locks.test_shards import ONE_SHARD, SMALL_RULE, _header, _line, _lock, _written
from vxds.locks.diff import diff_locks, diff_refs
from vxds.locks.format import HEADER, render_header
from vxds.locks.refs import LockRef, folder_lock
from vxds.locks.shard_join import ShardTypes
from vxds.locks.shards import ShardRule
from vxds.locks.split_diff import Tally
from vxds.locks.splits import Split
from vxds.locks.store import Lock, read_header

IDS = [f"sub-{i:04d}/anat/f{i}.nii.gz" for i in range(600)]


def _recording(ref: LockRef, seen: list[str]) -> LockRef:
    """``ref``, noting the name of every file read one at a time."""
    assert ref.shards is not None
    read = ref.shards.read

    def noted(name: str, listed: tuple[int, str]) -> AbstractContextManager[Iterator[bytes]]:
        seen.append(name)
        return read(name, listed)

    return dataclasses.replace(ref, shards=dataclasses.replace(ref.shards, read=noted))


def _mixed(ids: set[str], bumped: set[str], rule: ShardRule) -> Lock:
    """A lock of ``ids``, those in ``bumped`` at version 2."""
    lines = [_line(rid, 2 if rid in bumped else 1) for rid in sorted(ids)]
    splits = {"train": Split.from_terminated(lines, rule)}
    return Lock(_header(splits), splits)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 590), st.integers(0, 40), st.sets(st.sampled_from(IDS), max_size=5))
def test_a_local_edit_diffs_as_the_whole_join(start: int, length: int, removed: set[str]) -> None:
    before = set(IDS)
    after = (before - removed) | {f"sub-{start:04d}/anat/new.nii.gz"}
    bumped = set(IDS[start : start + length])
    flat = diff_locks(_mixed(before, set(), ONE_SHARD), _mixed(after, bumped, ONE_SHARD))
    with _written(_mixed(before, set(), SMALL_RULE), _mixed(after, bumped, SMALL_RULE)) as (a, b):
        sharded = diff_refs(folder_lock(a, "old"), folder_lock(b, "new"))
    assert sharded.changes == flat.changes
    assert sharded.unchanged == flat.unchanged
    assert sharded.splits == flat.splits


def _untyped(folder: Path) -> None:
    """The lock in ``folder`` as a vxds of the last stop wrote it: no shard lists its types."""
    header = read_header(folder)[0]
    shards = {
        n: tuple(dataclasses.replace(s, types=()) for s in listed) for n, listed in header.shards.items()
    }
    (folder / HEADER).write_text(render_header(dataclasses.replace(header, shards=shards)))


def _reads(a: Path, b: Path, cache: Path) -> list[str]:
    """The files one diff of ``a`` and ``b`` reads one at a time."""
    seen: list[str] = []
    diff = diff_refs(
        _recording(folder_lock(a, "old", cache), seen), _recording(folder_lock(b, "new", cache), seen)
    )
    assert [c.kind for c in diff.changes] == ["removed", "added"]
    assert diff.unchanged == len(IDS) - 1
    assert diff.splits["train"].by["type"] == {"File": [len(IDS), len(IDS)]}
    return seen


def _one_replaced() -> tuple[Lock, Lock]:
    before = set(IDS)
    return _lock(before, SMALL_RULE), _lock((before - {IDS[300]}) | {"sub-0300/anat/g.nii.gz"}, SMALL_RULE)


def test_a_first_diff_reads_only_the_shards_that_differ(tmp_path: Path) -> None:
    with _written(*_one_replaced()) as (a, b):
        files = [p.name for p in b.iterdir() if p.name != HEADER]
        assert len(files) > 10
        seen = _reads(a, b, tmp_path / "cache")  # no tally cached: the types come from lock.toml
        assert 2 <= len(seen) <= 4  # the changed shard on both sides, maybe its neighbour
        assert not (tmp_path / "cache" / "shard-tallies").exists()


def test_a_lock_listing_no_types_reads_each_equal_shard_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with _written(*_one_replaced()) as (a, b):
        _untyped(a)
        _untyped(b)
        files = [p.name for p in b.iterdir() if p.name != HEADER]
        assert len(_reads(a, b, cache)) >= len(files)  # cold: every file once
        assert len(ShardTypes(cache).types) >= len(files) - 2  # saved under the cache folder
        assert len(_reads(a, b, cache)) <= 4  # warm: the changed ones


def test_a_damaged_cache_is_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "shard-tallies").write_bytes(b"{not json")
    like = Tally(("type", "attrs.n"), "attrs.n")
    line = _line("a/1")
    assert ShardTypes(tmp_path).get("blake3:x", like, lambda: iter([line])).count == 1
    types = ShardTypes(tmp_path)
    types.get("blake3:x", like, lambda: iter([line]))
    types.save()
    cached = ShardTypes(tmp_path).get("blake3:x", like, lambda: iter([]))  # from the cache: nothing read
    assert cached.count == 1
    assert (dict(cached.types), cached.by, cached.groups) == (
        {"File": 1},
        {"attrs.n": {"3": 1}},
        {b"3": "a/1"},
    )


@pytest.mark.parametrize("by", [(), ("attrs.n",)])
def test_a_diff_by_fields_and_groups_skips_shards_alike(by: tuple[str, ...]) -> None:
    before, after = set(IDS), set(IDS[:-1])
    flat = diff_locks(_lock(before, ONE_SHARD), _lock(after, ONE_SHARD), by=by, group_by="attrs.n")
    with _written(_lock(before, SMALL_RULE), _lock(after, SMALL_RULE)) as (a, b):
        sharded = diff_refs(folder_lock(a, "old"), folder_lock(b, "new"), by=by, group_by="attrs.n")
    assert (sharded.changes, sharded.splits, sharded.warnings) == (flat.changes, flat.splits, flat.warnings)
