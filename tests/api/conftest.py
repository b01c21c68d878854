"""A sharded lock on disk, small enough to read in a test and cut into several shards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import make_lock, make_resource
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock, write_lock

SMALL = ShardRule(min_bytes=200, target_bytes=600, max_bytes=1200)  # a few resources a shard
IDS = [f"sub-{n:03d}/anat/sub-{n:03d}_T2w.nii.gz" for n in range(1, 121)]


def sharded_lock(folder: Path, rule: ShardRule = SMALL, name: str = "d") -> Lock:
    """``NAME@1`` with a sharded ``train`` (120 resources) and a one-file ``test`` (3), written."""
    train = Split.from_lines(
        [make_resource(rid, site=f"s{len(rid) % 3}", of=name).canonical_line() for rid in IDS], rule
    )
    test = Split.from_lines([make_resource(f"t{n}", of=name).canonical_line() for n in range(3)])
    lock = make_lock(train=train, test=test)
    lock = Lock(replace(lock.header, name=name, shards=header_shards(lock.splits)), lock.splits)
    write_lock(lock, folder)
    return lock


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    folder = tmp_path / "locks" / "d" / "1"
    lock = sharded_lock(folder)
    assert len(lock.splits["train"].shards) > 3  # the point: several shards
    return folder
