"""SQL over locks with DuckDB: each lock a view ``"name@version"``, all of them ``resources``.

The split files are read by DuckDB's own JSON reader (``read_json`` over each split's files),
so no Python object is made per resource; a view reads its files only when a query names it.
Without revisions the views are the working tree's locks; with ``rev`` every lock at each
revision is ``"REV:name@version"`` (also ``"name@version"`` when one revision is given) and
``resources`` has a ``rev`` column holding the revision as it was written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from vxds.errors import LockError, UsageError
from vxds.git.repo import Repository
from vxds.project.config import Config, load_config
from vxds.query import parquet
from vxds.query.tables import LockFolder, revision_locks, worktree_locks

T = TypeVar("T")
EXTRA_HINT = "pip install 'vxds[query]'"
# The columns of every lock's rows, as DuckDB reads them from a resource line.
LINE_COLUMNS = {
    "id": "VARCHAR",
    "type": "VARCHAR",
    "version": "VARCHAR",  # an integer or a string in a lock: kept as its text
    "hash": "VARCHAR",
    "size": "BIGINT",
    "uri": "VARCHAR",
    "attrs": "JSON",
}
COLUMNS = ("dataset", "version", "split", "id", "type", "resource_version", "hash", "size", "uri", "attrs")
JSON_TYPE = b"JSON"  # field metadata "vxds.type" of a result column DuckDB typed as JSON


class QueryError(UsageError):
    """A SQL statement DuckDB refused: the message names the problem."""


class MissingExtra(UsageError):
    """DuckDB or pyarrow is not installed."""


def duckdb_module() -> Any:
    """``duckdb``, after checking pyarrow is there too (without importing it: a result
    shown as a table or JSON does not need it); ``MissingExtra`` says what to install."""
    from importlib.util import find_spec

    try:
        import duckdb

        if find_spec("pyarrow") is None:
            raise ImportError("No module named 'pyarrow'", name="pyarrow")
    except ImportError as exc:
        raise MissingExtra(
            f"vxds query needs DuckDB and pyarrow, which are not installed ({exc.name} is missing)",
            hint=f"install the query extra: {EXTRA_HINT}",
        ) from None
    return duckdb


def query(sql: str, *, rev: str | Sequence[str] | None = None, root: str | Path | None = None) -> Any:
    """The result of ``sql`` over the project's locks as a ``pyarrow.Table``.

    ``rev`` is a revision or a list of them (``"main"``, ``"v1"``, ``"HEAD"``): the locks as
    they were there, read from Git's objects; None reads the working tree's locks.
    """
    return over_locks(sql, rev=rev, root=root, read=run)


def over_locks(
    sql: str, *, rev: str | Sequence[str] | None, root: str | Path | None, read: Callable[[Any, str], T]
) -> T:
    """``read(connection, sql)`` over the views of the project's locks (at ``rev``)."""
    duckdb_module()  # before anything else: without the extra, say so whatever the project
    config = load_config(Path(root) if root is not None else None)
    revs = [rev] if isinstance(rev, str) else list(dict.fromkeys(rev or ()))
    with connection(config, revs, sql=sql) as con:
        return read(con, sql)


@contextmanager
def connection(config: Config, revs: Sequence[str], *, sql: str = "", cache: bool = True) -> Iterator[Any]:
    """An in-memory DuckDB with the views of the locks; revisions' copies removed after.

    With ``cache``, views read the Parquet copies under ``.vxds/query/`` where they exist,
    made first for the locks ``sql`` names (``vxds.query.parquet``)."""
    duckdb = duckdb_module()
    with tempfile.TemporaryDirectory(prefix="vxds-query-") as tmp:
        locks = _locks(config, revs, Path(tmp), cache=cache)
        con = duckdb.connect(":memory:")
        try:
            cached: dict[Path, Path] = {}
            if cache:
                convert = parquet.wanted(locks, sql)
                cached = parquet.cached_files(
                    con, locks, config.cache_dir / "query", convert, _read_json("{files}")
                )
            for statement in view_statements(
                locks, with_rev=bool(revs), single=len(revs) <= 1, cached=cached
            ):
                con.execute(statement)
            yield con
        finally:
            con.close()


def _locks(config: Config, revs: Sequence[str], tmp: Path, *, cache: bool) -> list[LockFolder]:
    """The working tree's locks, or every lock at each revision (copied under ``tmp``)."""
    if not revs:
        return _unique(worktree_locks(config, cache=cache))
    repo = Repository(config.root)
    return [
        lock
        for n, rev in enumerate(revs)
        for lock in _unique(revision_locks(repo, config, rev, tmp / str(n)))
    ]


def _unique(locks: list[LockFolder]) -> list[LockFolder]:
    """``locks``, or ``LockError`` when two folders hold the same ``name@version``."""
    seen: dict[str, str] = {}
    for lock in locks:
        other = seen.setdefault(lock.key, lock.label)
        if other != lock.label:
            raise LockError(
                f"{lock.label}: holds {lock.key}, as {other} does", hint="one of them is misnamed"
            )
    return locks


def run(con: Any, sql: str) -> Any:
    """``sql``'s last statement's rows as an Arrow table (JSON columns marked in the schema)."""
    import duckdb

    try:
        return arrow_table(statement(con, sql))
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None


def statement(con: Any, sql: str) -> Any:
    """DuckDB's relation of ``sql``'s last statement (the ones before it are run), or None
    when it returns no rows; ``QueryError`` when DuckDB refuses one."""
    import duckdb

    try:
        return con.sql(sql)
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None


def arrow_table(relation: Any) -> Any:
    """A relation's rows as an Arrow table, its JSON columns marked (``JSON_TYPE``); an
    empty table for None."""
    import pyarrow as pa

    if relation is None:  # the last statement returned no rows (a SET, a CREATE)
        return pa.table({})
    types = [str(t) for t in relation.types]
    table = relation.to_arrow_table()
    fields = [
        field.with_metadata({b"vxds.type": JSON_TYPE}) if kind == "JSON" else field
        for field, kind in zip(table.schema, types, strict=True)
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def one_line(exc: Exception) -> str:
    """DuckDB's message without the caret lines under the statement."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"the query failed: {first}"


# --- the views ---------------------------------------------------------------------------


def view_statements(
    locks: Sequence[LockFolder], *, with_rev: bool, single: bool, cached: Mapping[Path, Path] | None = None
) -> list[str]:
    """``CREATE VIEW`` statements: one per lock, then ``resources`` over all of them."""
    statements, names = [], []
    for lock in locks:
        name = _quoted(f"{lock.rev}:{lock.key}" if lock.rev is not None else lock.key)
        statements.append(
            f"CREATE VIEW {name} AS {lock_select(lock, with_rev=with_rev, cached=cached or {})}"
        )
        if lock.rev is not None and single:
            statements.append(f"CREATE VIEW {_quoted(lock.key)} AS SELECT * FROM {name}")
        names.append(name)
    rows = " UNION ALL ".join(f"SELECT * FROM {name}" for name in names) or _empty(with_rev=with_rev)
    statements.append(f"CREATE VIEW resources AS {rows}")
    return statements


def lock_select(lock: LockFolder, *, with_rev: bool, cached: Mapping[Path, Path] | None = None) -> str:
    """A ``SELECT`` of one lock's rows in ``COLUMNS`` order (``rev`` first when asked); files
    with a Parquet copy in ``cached`` are read from it."""
    header = lock.header
    parts = []
    for split in sorted(header.splits):
        constants = [f"{sql_literal(header.name)} AS dataset", f"CAST({header.version} AS BIGINT) AS version"]
        if with_rev:
            constants.insert(0, f"{sql_literal(lock.rev or '')} AS rev")
        lines = _lines(lock.files(split), cached or {})
        parts.append(
            f"SELECT {', '.join(constants)}, {sql_literal(split)} AS split, id, type, "
            f"version AS resource_version, hash, size, uri, attrs FROM ({lines})"
        )
    return " UNION ALL ".join(parts) or _empty(with_rev=with_rev)


def _lines(files: list[Path], cached: Mapping[Path, Path]) -> str:
    """A ``SELECT`` of the line columns of ``files``: JSON, or their Parquet copies."""
    copies = [cached[path] for path in files if path in cached]
    text = [path for path in files if path not in cached]
    reads = [_read_json(", ".join(sql_literal(str(path)) for path in text))] if text or not copies else []
    if copies:
        listed = ", ".join(sql_literal(str(path)) for path in copies)
        casts = ", ".join(f"CAST({column} AS {kind}) AS {column}" for column, kind in LINE_COLUMNS.items())
        reads.append(f"SELECT {casts} FROM read_parquet([{listed}])")
    return " UNION ALL ".join(reads)


def _read_json(files: str) -> str:
    """A ``SELECT`` of the line columns of the JSON ``files`` (quoted paths, comma-separated)."""
    return f"SELECT * FROM read_json([{files}], format = 'newline_delimited', columns = {_columns()})"


def _empty(*, with_rev: bool) -> str:
    """A ``SELECT`` of no rows with the columns and types of a lock's rows."""
    types = {"dataset": "VARCHAR", "version": "BIGINT", "split": "VARCHAR", "resource_version": "VARCHAR"}
    columns = [f"CAST(NULL AS {types.get(c) or LINE_COLUMNS[c]}) AS {c}" for c in COLUMNS]
    if with_rev:
        columns.insert(0, "CAST(NULL AS VARCHAR) AS rev")
    return f"SELECT {', '.join(columns)} WHERE false"


def _columns() -> str:
    return "{" + ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in LINE_COLUMNS.items()) + "}"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
