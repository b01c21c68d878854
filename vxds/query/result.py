"""A query's result as Python rows, for the CLI's table and JSON output.

A result whose columns are all of the types in ``PLAIN`` (numbers, text, JSON, and lists
and structs of numbers and text) or HUGEINT (what ``sum`` of integers gives) is fetched
from DuckDB as Python values, without pyarrow or numpy; those are the types whose Python
values are the same either way (a HUGEINT made the ``Decimal`` Arrow gives), so the output
does not depend on which way a result came. Any other result (dates, times, maps, UUIDs,
unsigned HUGEINTs...) is read through Arrow (``engine.arrow_table``), as the Python API gets it,
and its rows taken from the Arrow table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NUMBERS = frozenset(
    {"tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint"}
    | {"float", "double", "decimal"}
)
PLAIN = NUMBERS | {"boolean", "varchar"}  # the ids of the types fetched as Python values
HUGE = "hugeint"  # a column of them (sums are) is fetched too: Arrow's values are Decimals
NESTED = frozenset({"list", "struct"})
ARROW_NUMBERS = ("int", "uint", "float", "double", "decimal")  # how Arrow's type names begin


@dataclass(frozen=True)
class Rows:
    """Column names, which columns are numbers (right-aligned in a table) and which hold
    JSON text, and the rows as tuples of Python values."""

    names: list[str]
    numeric: list[bool]
    json: list[bool]
    rows: list[tuple[Any, ...]]


def fetch(con: Any, sql: str) -> Rows:
    """``sql``'s last statement's rows (the statements before it run once, as DuckDB runs
    a script): fetched as Python values when every column is plain, else through Arrow."""
    import duckdb

    from vxds.query.engine import QueryError, arrow_table, one_line, statement

    relation = statement(con, sql)
    try:
        if relation is None:  # the last statement returned no rows (a SET, a CREATE)
            return Rows([], [], [], [])
        types = list(relation.types)
        if all(plain(t, top=True) for t in types):
            numeric = [t.id in NUMBERS or t.id == HUGE for t in types]
            json = [str(t) == "JSON" for t in types]
            return Rows(list(relation.columns), numeric, json, _decimals(relation.fetchall(), types))
        return from_arrow(arrow_table(relation))
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None


def plain(kind: Any, *, top: bool = False) -> bool:
    """Whether DuckDB's Python value of a ``kind`` is the one its Arrow value gives: JSON
    only as a column (where both are its text), not inside a list or struct."""
    if kind.id in NESTED:
        children: Sequence[tuple[str, Any]] = kind.children
        return all(plain(child) for _name, child in children)
    if top and kind.id == HUGE:
        return True
    return kind.id in PLAIN and (top or str(kind) != "JSON")


def _decimals(rows: list[tuple[Any, ...]], types: Sequence[Any]) -> list[tuple[Any, ...]]:
    """``rows`` with each HUGEINT a ``Decimal``, as Arrow's ``decimal128(38, 0)`` gives it."""
    huge = [i for i, kind in enumerate(types) if kind.id == HUGE]
    if not huge:
        return rows
    from decimal import Decimal

    def converted(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i in huge:
            values[i] = None if values[i] is None else Decimal(values[i])
        return tuple(values)

    return [converted(row) for row in rows]


def from_arrow(table: Any) -> Rows:
    """The rows of an Arrow table (``engine.arrow_table``'s, JSON columns marked in its schema)."""
    from vxds.query.render import is_json

    return Rows(
        list(table.column_names),
        [str(field.type).startswith(ARROW_NUMBERS) for field in table.schema],
        [is_json(field) for field in table.schema],
        list(zip(*(column.to_pylist() for column in table.columns), strict=True)),
    )
