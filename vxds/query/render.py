"""A query's result as the bytes of a JSON array (from its ``Rows``), a CSV file or Parquet
(from its Arrow table).

JSON columns (field metadata ``vxds.type = JSON``) are written as the JSON they hold in a
JSON array, and as their text in CSV; other nested values (lists, structs) are JSON text in
CSV, which has no other way to hold them.
"""

from __future__ import annotations

import datetime
import decimal
import io
from typing import TYPE_CHECKING, Any

import orjson

from vxds.query.engine import JSON_TYPE

if TYPE_CHECKING:
    from vxds.query.result import Rows


def is_json(field: Any) -> bool:
    return bool(field.metadata and field.metadata.get(b"vxds.type") == JSON_TYPE)


def json_bytes(result: Rows) -> bytes:
    """One JSON array with an object per row, columns in the result's order."""
    columns = list(zip(result.names, result.json, strict=True))
    rows = [
        {name: _loads(value) if text else value for (name, text), value in zip(columns, row, strict=True)}
        for row in result.rows
    ]
    return orjson.dumps(rows, default=_plain, option=orjson.OPT_INDENT_2) + b"\n"


def _loads(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: decimals as numbers, durations and bytes as text."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if _is_interval(value):
        return interval_text(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _is_interval(value: Any) -> bool:
    """Arrow's month-day-nanosecond interval (DuckDB's INTERVAL), a named tuple."""
    return all(hasattr(value, name) for name in ("months", "days", "nanoseconds"))


def interval_text(value: Any) -> str:
    """An INTERVAL as an ISO 8601 duration (``P1M2DT3.5S``): exact, as a timedelta cannot
    hold months."""
    seconds = decimal.Decimal(value.nanoseconds) / 1_000_000_000
    text = f"P{value.months}M{value.days}D" if value.months or value.days or not seconds else ""
    if seconds:
        text = (text or "P") + f"T{seconds.normalize():f}S"
    return text


def csv_bytes(table: Any) -> bytes:
    """A CSV file with a header line; nested values as JSON text."""
    import pyarrow as pa
    import pyarrow.csv

    flat = table
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type) or pa.types.is_interval(field.type):
            text = [None if v is None else cell(v) for v in table.column(i).to_pylist()]
            flat = flat.set_column(i, field.name, pa.array(text, pa.string()))
    out = io.BytesIO()
    pyarrow.csv.write_csv(flat, out)
    return out.getvalue()


def parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet

    out = io.BytesIO()
    pyarrow.parquet.write_table(table, out)
    return out.getvalue()


def cell(value: Any) -> str:
    """A value as a table cell: NULL shown as such, strings as they are."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=_plain).decode()
    if _is_interval(value):
        return interval_text(value)
    return str(value)
