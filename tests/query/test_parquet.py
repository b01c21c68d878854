"""vxds/query/parquet.py: a query writes a Parquet copy of each lock file it reads, keyed by
the file's digest, and the next query reads the copies with the same result."""

from __future__ import annotations

import shutil
from pathlib import Path

from vxds.locks.shards import listed_files
from vxds.project.config import load_config
from vxds.query import engine
from vxds.query.engine import query
from vxds.query.parquet import wanted
from vxds.query.tables import worktree_locks

EVERY = "SELECT * FROM resources ORDER BY dataset, version, split, id"
ONE = 'SELECT split, id, attrs FROM "viseg_training@1" ORDER BY split, id'


def _from_json(root: Path, sql: str) -> list[dict[str, object]]:
    """The rows of ``sql`` read from the JSON files only (no cache read or written)."""
    with engine.connection(load_config(root), [], sql=sql, cache=False) as con:
        rows: list[dict[str, object]] = engine.run(con, sql).to_pylist()
        return rows


def _digests(root: Path, key: str | None = None) -> set[str]:
    """The hex digest of every lock file (of the lock ``key``, or all)."""
    return {
        digest.partition(":")[2]
        for lock in worktree_locks(load_config(root))
        if key in (None, lock.key)
        for split in lock.header.splits
        for _name, (_count, digest) in listed_files(lock.header, split)
    }


def _copies(root: Path) -> set[str]:
    return {p.stem for p in (root / ".vxds/query").glob("*.parquet")}


def test_a_query_keeps_a_copy_of_each_file_and_reads_it_next_time(project: Path) -> None:
    expected = _from_json(project, EVERY)
    assert not (project / ".vxds/query").exists()
    assert query(EVERY).to_pylist() == expected  # cold: converted, then read from the copies
    assert _copies(project) == _digests(project)
    assert sorted(p.name for p in (project / ".vxds/query").iterdir() if p.suffix != ".parquet") == []
    assert query(EVERY).to_pylist() == expected  # warm


def test_the_copies_are_what_the_views_read(project: Path) -> None:
    query(ONE)
    assert _copies(project) == _digests(project, "viseg_training@1")  # only the lock it names
    [test_copy, train_copy] = [
        project / ".vxds/query" / f"{digest.partition(':')[2]}.parquet"
        for split in ("test", "train")
        for lock in worktree_locks(load_config(project))
        if lock.key == "viseg_training@1"
        for _name, (_count, digest) in listed_files(lock.header, split)
    ]
    shutil.copyfile(train_copy, test_copy)  # the test split's copy now holds the train rows
    rows = query(ONE).to_pylist()
    assert [r["id"] for r in rows if r["split"] == "test"] == [r["id"] for r in rows if r["split"] == "train"]


def test_a_cache_that_cannot_be_written_leaves_the_query_to_json(project: Path) -> None:
    expected = _from_json(project, ONE)
    (project / ".vxds").mkdir(exist_ok=True)
    (project / ".vxds/query").write_text("not a folder")
    assert query(ONE).to_pylist() == expected


def test_a_revisions_files_are_cached_by_digest_too(project: Path) -> None:
    expected = _from_json(project, ONE)
    assert query(ONE, rev="v1").to_pylist() == expected  # v1 is the working tree's commit
    assert _copies(project) == _digests(project, "viseg_training@1")  # the same bytes, the same copy


def test_the_locks_a_statement_names(project: Path) -> None:
    locks = worktree_locks(load_config(project))
    keys = {lock.key for lock in locks}
    assert wanted(locks, "select count(*) from RESOURCES") == keys
    assert (
        wanted(locks, "select * from \"viseg_training@2\" where id like 'resources%'") == keys
    )  # a superset
    assert wanted(locks, 'select * from "VISEG_training@2"') == {"viseg_training@2"}
    assert wanted(locks, "select 1") == set()
