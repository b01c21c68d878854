"""One lock held in memory as an Arrow table, read by DuckDB's JSON reader from its bytes.

The columns are those of ``LockedDataset.to_records()``: ``split`` then each field of a
resource, ``version`` being the resource's own and ``attrs`` its JSON text (field
metadata ``vxds.type = JSON``), which ``pyarrow.compute``, pandas, polars or
``vxds.query`` can reach into.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

from vxds.locks.store import Lock
from vxds.query.engine import (
    EXTRA_HINT,
    JSON_TYPE,
    LINE_COLUMNS,
    MissingExtra,
    QueryError,
    duckdb_module,
    sql_literal,
)

COLUMNS = ("split", "id", "type", "version", "hash", "size", "uri", "attrs")


def lock_table(lock: Lock, splits: list[str]) -> Any:
    """The resources of ``splits`` (in that order) as a ``pyarrow.Table``."""
    duckdb = duckdb_module()
    import pyarrow as pa

    tables = []
    with duckdb.connect(":memory:") as con:
        for name in splits:
            chunks = lock.splits[name].chunks
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            tables.append(_split_table(con, name, data))
    if not tables:
        return _typed(pa.table({c: pa.array([], pa.string()) for c in COLUMNS}))
    return _typed(pa.concat_tables(tables))


def _split_table(con: Any, split: str, data: bytes) -> Any:
    import duckdb
    import pyarrow as pa

    if not data:  # DuckDB's reader wants at least one line to read the columns of
        return pa.table({c: pa.array([], pa.string()) for c in COLUMNS})
    try:
        relation = con.read_json(io.BytesIO(data), format="newline_delimited", columns=LINE_COLUMNS)
        return relation.project(f"{sql_literal(split)} AS split, {', '.join(COLUMNS[1:])}").to_arrow_table()
    except duckdb.Error as exc:  # a lock read with every check cannot get here
        raise QueryError(f"split {split!r}: {str(exc).splitlines()[0]}") from None


def _typed(table: Any) -> Any:
    import pyarrow as pa

    types = {"size": pa.int64()}
    fields = []
    for field in table.schema:
        field = field.with_type(types.get(field.name, pa.string()))
        fields.append(field.with_metadata({b"vxds.type": JSON_TYPE}) if field.name == "attrs" else field)
    return table.cast(pa.schema(fields))


def pandas_frame(table: Any) -> Any:
    """An Arrow table as a ``pandas.DataFrame``."""
    _library("pandas")
    return table.to_pandas()


def polars_frame(table: Any) -> Any:
    """An Arrow table as a ``polars.DataFrame``."""
    return _library("polars").from_arrow(table)


def _library(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        hint = f"install the query extra: {EXTRA_HINT}"
        raise MissingExtra(f"{name} is not installed", hint=hint) from None
