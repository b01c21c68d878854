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
from vxds.locks.refs import LockRef, folder_lock
from vxds.locks.shard_join import ShardTypes
from vxds.locks.shards import ShardRule
from vxds.locks.split_diff import Tally
from vxds.locks.splits import Split
from vxds.locks.store import Lock

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


def test_equal_shards_are_not_read_once_their_types_are_cached(tmp_path: Path) -> None:
    before = set(IDS)
    after = (before - {IDS[300]}) | {"sub-0300/anat/g.nii.gz"}
    cache = tmp_path / "cache"
    with _written(_lock(before, SMALL_RULE), _lock(after, SMALL_RULE)) as (a, b):
        files = sorted(p.name for p in b.iterdir() if p.name != "lock.toml")
        for expected_reads in (len(files), 2):  # cold: every file once; warm: the changed ones
            seen: list[str] = []
            old = _recording(folder_lock(a, "old", cache), seen)
            new = _recording(folder_lock(b, "new", cache), seen)
            diff = diff_refs(old, new)
            assert [c.kind for c in diff.changes] == ["removed", "added"]
            assert diff.unchanged == len(IDS) - 1
            assert len(files) > 10
            assert len(seen) <= expected_reads + 2  # the changed shard on both sides, maybe its neighbour
        assert len(ShardTypes(cache).types) >= len(files) - 2  # saved under the cache folder


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
