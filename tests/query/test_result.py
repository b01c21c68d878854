"""vxds/query/result.py: a result fetched as Python values is the one read through Arrow,
type by type, and the CLI's table and JSON output of it does not import pyarrow or numpy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from vxds.query.engine import QueryError, run
from vxds.query.render import json_bytes
from vxds.query.result import fetch, from_arrow

# Each fetched as Python values (plain types), then each read through Arrow (the rest).
PLAIN = {
    "numbers": "SELECT 1::TINYINT a, 2::SMALLINT b, 3 c, 4::BIGINT d, 5::UTINYINT e, 6::UBIGINT f",
    "floats": "SELECT 1.5::FLOAT a, 1/3 b, 1e300 c, 2.50::DECIMAL(18,3) d, 7::DECIMAL(30,2) e, 0.1::FLOAT f",
    "huge sums": "SELECT sum(x) s, sum(x)::HUGEINT * 0 z, (2::HUGEINT ** 126)::HUGEINT h FROM range(4) t(x)",
    "huge null": "SELECT NULL::HUGEINT h",
    "text": "SELECT 'x' a, NULL::VARCHAR b, 'é\"\\n' c, true t, NULL::BOOLEAN f",
    "json": """SELECT '{"a": [1, 2.5, null], "b": {"c": "d"}}'::JSON j, '3'::JSON n, NULL::JSON z""",
    "lists": "SELECT [1, 2] a, ['x', NULL] b, [[1], []] c, []::INTEGER[] d, NULL::VARCHAR[] e",
    "structs": "SELECT {'x': 1, 'y': 'z'} s, [{'k': 1.5}] l, {'n': NULL::INTEGER} n",
    "duplicate names": "SELECT 1 a, 2 a",
    "no rows": "SELECT 1 a WHERE false",
    "no columns": "CREATE TABLE t AS SELECT 1 a",
}
THROUGH_ARROW = {
    "null": "SELECT NULL n",
    "dates": "SELECT DATE '2020-01-02' d, TIMESTAMP '2020-01-02 03:04:05' t, TIME '01:02:03' h",
    "a zone": "SELECT TIMESTAMPTZ '2020-01-02 03:04:05+02' t",
    "map": "SELECT MAP {'a': 1} m",
    "array": "SELECT [1, 2]::INTEGER[2] a",
    "uuid": "SELECT '00000000-0000-0000-0000-000000000001'::UUID u",
    "blob": "SELECT 'ab'::BLOB b",
    "json in a list": """SELECT ['{"a": 1}'::JSON] l""",
    "unsigned huge": "SELECT 12::UHUGEINT u",
    "enum": "SELECT 'a'::ENUM('a', 'b') e",
}


def _both(sql: str) -> tuple[object, object]:
    """``sql``'s rows fetched by ``fetch`` and read through Arrow, each on a fresh database."""
    with duckdb.connect(":memory:") as fetched, duckdb.connect(":memory:") as through_arrow:
        return fetch(fetched, sql), from_arrow(run(through_arrow, sql))


@pytest.mark.parametrize("sql", [*PLAIN.values(), *THROUGH_ARROW.values()], ids=[*PLAIN, *THROUGH_ARROW])
def test_fetched_rows_are_the_arrow_rows(sql: str) -> None:
    fetched, through_arrow = _both(sql)
    assert fetched == through_arrow
    assert json_bytes(fetched) == json_bytes(through_arrow)  # type: ignore[arg-type]


def _no_arrow(relation: object) -> None:
    raise AssertionError("read through Arrow")


@pytest.mark.parametrize("sql", PLAIN.values(), ids=PLAIN)
def test_plain_results_are_fetched_without_arrow(sql: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vxds.query.engine.arrow_table", _no_arrow)
    with duckdb.connect(":memory:") as con:
        fetch(con, sql)


@pytest.mark.parametrize("sql", THROUGH_ARROW.values(), ids=THROUGH_ARROW)
def test_other_results_are_read_through_arrow(sql: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vxds.query.engine.arrow_table", _no_arrow)
    with duckdb.connect(":memory:") as con, pytest.raises(AssertionError, match="through Arrow"):
        fetch(con, sql)


def test_a_script_runs_once_either_way() -> None:
    for last in ("SELECT * FROM t", "SELECT a, DATE '2020-01-01' d FROM t"):
        with duckdb.connect(":memory:") as con:
            rows = fetch(con, f"CREATE TABLE t AS SELECT 1 a; INSERT INTO t VALUES (2); {last}")
            assert [row[0] for row in rows.rows] == [1, 2]


def test_errors_while_fetching_are_one_line() -> None:
    with duckdb.connect(":memory:") as con, pytest.raises(QueryError, match=r"\Athe query failed: Conv"):
        fetch(con, "SELECT 'x'::INTEGER")
    with duckdb.connect(":memory:") as con, pytest.raises(QueryError, match=r"\Athe query failed: Conv"):
        fetch(con, "SELECT 'x'::DATE")


SHOWN = textwrap.dedent(
    """
    import sys

    from vxds.cli.main import main

    sys.argv = ["vxds", "query", sys.argv[1], "--format", sys.argv[2]]
    try:
        main()
    finally:
        loaded = sorted({name.partition(".")[0] for name in sys.modules} & {"numpy", "pyarrow", "pandas"})
        print("loaded:", *loaded, file=sys.stderr)
    """
)


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_table_and_json_output_import_neither_pyarrow_nor_numpy(project: Path, fmt: str) -> None:
    sql = "SELECT split, attrs->>'suffix' AS suffix, count(*), sum(size) AS bytes FROM resources GROUP BY ALL"
    shown = subprocess.run(
        [sys.executable, "-c", SHOWN, sql, fmt], cwd=project, capture_output=True, text=True, check=True
    )
    assert shown.stderr == "loaded:\n"
    dated = subprocess.run(
        [sys.executable, "-c", SHOWN, "SELECT DATE '2020-01-01' AS d", fmt],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pyarrow" in dated.stderr.split()  # a date goes through Arrow: the check above can fail
    if fmt == "json":
        assert json.loads(dated.stdout) == [{"d": "2020-01-01"}]
