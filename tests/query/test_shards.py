"""A sharded lock (format 2, several files per split) queried in the working tree, at a
revision and as a data frame: the rows are the split's lines, in order, once each."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import vxds
from tests.helpers import Invoke, commit_all, git
from vxds.locks import shards
from vxds.locks.format import render_header
from vxds.locks.shards import ShardRule, split_files
from vxds.locks.store import read_lock
from vxds.query.engine import query
from vxds.query.tables import lock_files

LOCK = "locks/all_basel_data/1"
SMALL = ShardRule(min_bytes=2000, target_bytes=8000, max_bytes=16000)  # the 55 kB lock: several shards


@pytest.fixture
def sharded(project: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tag ``format1``: every lock's header as vxds 0.x wrote it (format 1); then HEAD:
    all_basel_data@1 relocked in shards of a few kB."""
    for header in project.glob("locks/*/*/lock.toml"):
        lock = read_lock(header.parent)
        header.write_text(render_header(dataclasses.replace(lock.header, format=1)))
    commit_all(project, "format 1 locks")
    git(project, "tag", "format1")
    monkeypatch.setattr(shards, "RULE", SMALL)
    assert invoke("lock", "all_basel_data@1").exit_code == 0
    commit_all(project, "all_basel_data@1 in small shards")
    return project / LOCK


def _ids(folder: Path) -> list[str]:
    header = read_lock(folder).header
    return [
        json.loads(line)["id"]
        for name in split_files(header, "all")
        for line in (folder / name).read_bytes().splitlines()
    ]


def test_every_shard_is_read_once_in_order(sharded: Path) -> None:
    header = read_lock(sharded).header
    assert lock_files(header, "all") == split_files(header, "all")
    assert len(split_files(header, "all")) > 2
    ids = _ids(sharded)
    assert ids == sorted(ids)
    sql = 'SELECT id FROM "all_basel_data@1"'
    assert query(sql).column("id").to_pylist() == ids
    assert query(sql, rev="HEAD").column("id").to_pylist() == ids
    sql = "SELECT rev, list(id ORDER BY id) AS ids FROM resources WHERE dataset = 'all_basel_data'"
    sql += " GROUP BY rev ORDER BY rev"
    both = query(sql, rev=["format1", "HEAD"])  # one file per split, and shards
    assert both.to_pylist() == [{"rev": "HEAD", "ids": ids}, {"rev": "format1", "ids": ids}]
    assert vxds.load_lock("all_basel_data@1").to_arrow().column("id").to_pylist() == ids


def test_a_missing_shard_is_a_corrupt_lock(sharded: Path) -> None:
    header = read_lock(sharded).header
    (sharded / split_files(header, "all")[1]).unlink()
    with pytest.raises(vxds.errors.LockError, match="is missing"):
        query("SELECT count(*) FROM resources")
