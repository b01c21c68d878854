"""``vxds query`` through the real CLI: every output format parsed back, errors, the extra."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers import REPO, Invoke

BY_SPLIT = 'SELECT split, count(*) AS n FROM "viseg_training@1" GROUP BY split ORDER BY split'
SHAPES = "SELECT id, attrs, attrs->'shape' AS shape, size FROM \"viseg_training@1\" ORDER BY id LIMIT 2"


def test_table_output(project: Path, invoke: Invoke) -> None:
    result = invoke("query", BY_SPLIT)
    assert result.exit_code == 0, result.output
    assert [line.rstrip() for line in result.output.splitlines()] == [
        "split    n",
        "──────────",
        "test     4",
        "train   22",
        "  2 rows",
    ]


def test_json_is_one_array_with_json_columns_as_json(project: Path, invoke: Invoke) -> None:
    result = invoke("query", SHAPES, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    first = json.loads(
        (project / "locks/viseg_training/1/resources.train.jsonl").read_bytes().splitlines()[0]
    )
    assert rows[0] == {
        "id": first["id"],
        "attrs": first["attrs"],
        "shape": [16, 16, 10],
        "size": first["size"],
    }
    assert len(rows) == 2
    assert json.loads(invoke("query", "SELECT 1 AS a WHERE false", "--format", "json").output) == []


def test_csv_and_parquet_written_to_files(project: Path, invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert invoke("query", SHAPES, "--format", "csv", "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [json.loads(r["shape"]) for r in rows] == [[16, 16, 10], [16, 16, 10]]
    assert json.loads(rows[0]["attrs"])["subject"] == "BS01"
    parquet = tmp_path / "out.parquet"
    assert (
        invoke("query", "SELECT * FROM resources", "--format", "parquet", "-o", str(parquet)).exit_code == 0
    )
    table = pq.read_table(parquet)
    assert table.num_rows == 180
    assert table.column_names[:3] == ["dataset", "version", "split"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "out.csv",
        "out.parquet",
    ]  # no temp left


def test_stdout_csv_and_a_table_file(project: Path, invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("query", BY_SPLIT, "--format", "csv")
    assert result.output == '"split","n"\n"test",4\n"train",22\n'
    out = tmp_path / "table.txt"
    assert invoke("query", BY_SPLIT, "-o", str(out)).exit_code == 0
    assert out.read_text().splitlines()[2].split() == ["test", "4"]


def test_rev_is_a_column_and_lists_every_revision(project: Path, invoke: Invoke) -> None:
    sql = "SELECT rev, count(*) AS n FROM resources GROUP BY rev ORDER BY rev"
    result = invoke("query", sql, "--rev", "v1", "--rev", "main", "--format", "json")
    assert json.loads(result.output) == [{"rev": "main", "n": 180}, {"rev": "v1", "n": 180}]


def test_errors_are_one_line_exit_2(project: Path, invoke: Invoke) -> None:
    result = invoke("query", "SELECT nope FROM resources")
    assert result.exit_code == 2
    assert result.output.startswith(
        'error: the query failed: Binder Error: Referenced column "nope" not found'
    )
    assert len(result.output.splitlines()) == 1
    result = invoke("query", "SELECT 1", "--format", "parquet")
    assert (result.exit_code, result.output) == (
        2,
        "error: --format parquet writes a binary file: give it -o FILE\n",
    )
    result = invoke("query", "SELECT 1", "--rev", "nosuch")
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown revision 'nosuch'")


BLOCKED = textwrap.dedent(
    """
    import sys

    BLOCK = sys.argv[1].split(",")

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCK:
                raise ImportError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Blocked())
    from vxds.cli.main import main

    sys.argv = ["vxds", "query", "SELECT 1"]
    main()
    """
)


@pytest.mark.parametrize(
    ("blocked", "missing"), [("duckdb,pyarrow", "duckdb"), ("pyarrow", "pyarrow")], ids=["both", "pyarrow"]
)
def test_without_the_extra_it_says_which_to_install(project: Path, blocked: str, missing: str) -> None:
    """pyarrow is looked for, not imported, before a query whose rows are shown as a table."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED, blocked],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: vxds query needs DuckDB and pyarrow, which are not installed ({missing} is missing)\n"
        "hint: install the query extra: pip install 'vxds[query]'\n"
    )


def test_an_interval_is_an_iso_duration_in_every_format(
    project: Path, invoke: Invoke, tmp_path: Path
) -> None:
    sql = "SELECT INTERVAL '1 month 2 days 3.5 seconds' AS d, INTERVAL 3 DAY AS e"
    table = invoke("query", sql)
    assert table.exit_code == 0, table.output
    assert "P1M2DT3.5S" in table.output
    assert "P0M3D" in table.output
    as_json = invoke("query", sql, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == [{"d": "P1M2DT3.5S", "e": "P0M3D"}]
    out = tmp_path / "out.csv"
    assert invoke("query", sql, "--format", "csv", "-o", str(out)).exit_code == 0
    assert list(csv.DictReader(io.StringIO(out.read_text()))) == [{"d": "P1M2DT3.5S", "e": "P0M3D"}]
