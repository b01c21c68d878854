"""A Parquet copy of each lock file a query reads, under ``.vxds/query/``, keyed by the file's
digest, so a second query over the same lock reads columns rather than parsing JSON.

A lock's header lists each split file's (or shard's) digest, and ``check_lock`` has checked
every file against it before any query runs; ``<hex digest>.parquet`` is the same lines'
columns (``engine.LINE_COLUMNS``), written by DuckDB from the JSON file and renamed into
place (``fs.StagedFile``), so a copy is whole or absent. A file that changed while it was
converted (its digest or stat differs afterwards) is not kept. Equal bytes have equal
digests, so a copy serves every revision and every project folder holding that file.

Files are converted before a query for the locks its SQL names (a view's quoted
``name@version``), or for every lock when it names ``resources``. The cache is an
optimisation only: when it cannot be written, the query reads the JSON files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vxds.fs import StagedFile
from vxds.hashing import hash_file_key
from vxds.locks.shards import listed_files
from vxds.query.tables import LockFolder

ALL_LOCKS = re.compile(r"\bresources\b", re.IGNORECASE)  # the view over every lock


def wanted(locks: Sequence[LockFolder], sql: str) -> set[str]:
    """The ``name@version`` of each lock the statement may read."""
    if ALL_LOCKS.search(sql):
        return {lock.key for lock in locks}
    text = sql.lower()
    return {lock.key for lock in locks if lock.key.lower() in text}


def cached_files(
    con: Any, locks: Sequence[LockFolder], folder: Path, convert: set[str], json_select: str
) -> dict[Path, Path]:
    """Each lock file that has a Parquet copy in ``folder`` -> the copy; files of the locks
    in ``convert`` without one are converted first (``json_select`` reads one file: its
    ``{files}`` is replaced by the file's quoted path)."""
    found: dict[Path, Path] = {}
    for lock in locks:
        for split in lock.header.splits:
            for name, (_count, digest) in listed_files(lock.header, split):
                path = lock.directory / name
                target = folder / f"{digest.partition(':')[2]}.parquet"
                if target.is_file() or (
                    lock.key in convert and _convert(con, path, digest, target, json_select)
                ):
                    found[path] = target
    return found


def _convert(con: Any, source: Path, digest: str, target: Path, json_select: str) -> bool:
    """Write ``target`` from ``source``, if its bytes are still those of ``digest``."""
    import duckdb

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        before = _stamp(os.stat(source))
        with StagedFile(target.parent, target.name) as out:
            select = json_select.replace("{files}", _literal(str(source)))
            con.execute(f"COPY ({select}) TO {_literal(str(out.path))} (FORMAT PARQUET)")
            if hash_file_key(source)[0] != digest or _stamp(os.stat(source)) != before:
                return False  # changed since check_lock read it: this copy is of other bytes
            out.commit(target, durable=False)
    except (OSError, duckdb.Error):
        return False
    return True


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
