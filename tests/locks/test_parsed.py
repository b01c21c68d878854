"""``read_lock(deep=True, parsed=True)``: the resources each line was checked as, kept, so a
reader of every resource (``vxds materialize``) does not parse the lines twice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers import REPO
from vxds.locks.format import CorruptLock
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock, lock_dir, read_lock, write_lock
from vxds.resource import Resource

from .test_store import make_lock


def _lines(count: int) -> list[bytes]:
    return [Resource(f"s/{i:03d}", 1, "Volume", attrs={"n": str(i)}).canonical_line() for i in range(count)]


@pytest.mark.parametrize(("name", "version"), [("viseg_training", 1), ("all_basel_data", 1)])
def test_the_kept_resources_are_those_the_lines_parse_to(name: str, version: int) -> None:
    directory = lock_dir(REPO / "locks", name, version)
    plain, kept = read_lock(directory, deep=True), read_lock(directory, deep=True, parsed=True)
    for split, content in plain.splits.items():
        assert content.parsed is None
        assert kept.splits[split].parsed is not None
        assert list(kept.splits[split].resources()) == list(content.resources())
        assert [r.attrs for r in kept.splits[split].resources()] == [r.attrs for r in content.resources()]


def test_every_shard_of_a_split_is_kept_in_order(tmp_path: Path) -> None:
    split = Split.from_lines(_lines(40), ShardRule(min_bytes=200, target_bytes=600, max_bytes=1200))
    assert len(split.shards) > 1
    lock = make_lock({"train": split})
    header = dataclasses.replace(lock.header, shards=header_shards(lock.splits))
    assert write_lock(Lock(header, lock.splits), tmp_path / "lock")
    kept = read_lock(tmp_path / "lock", deep=True, parsed=True).splits["train"]
    assert [r.id for r in kept.resources()] == [f"s/{i:03d}" for i in range(40)]


def test_a_bad_line_is_still_a_corrupt_lock(tmp_path: Path) -> None:
    data = b'{"id": "a", "version": 1}\n'  # digests agree: only the line checks see it
    assert write_lock(make_lock({"train": Split.from_bytes(data)}), tmp_path / "lock")
    with pytest.raises(CorruptLock, match="line is not in canonical form"):
        read_lock(tmp_path / "lock", deep=True, parsed=True)


def test_without_deep_nothing_is_parsed(tmp_path: Path) -> None:
    assert write_lock(make_lock({"train": Split.from_lines(_lines(3))}), tmp_path / "lock")
    assert read_lock(tmp_path / "lock", parsed=True).splits["train"].parsed is None
