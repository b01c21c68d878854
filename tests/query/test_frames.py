"""``LockedDataset.to_arrow()``, ``.to_pandas()``, ``.to_polars()`` and ``vxds.query`` as the API."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vxds
from tests.helpers import REPO
from vxds.errors import NotFoundError
from vxds.query.frames import COLUMNS
from vxds.query.render import is_json


def test_to_arrow_matches_to_records(project: Path) -> None:
    lock = vxds.load_lock("viseg_training@2")
    table = lock.to_arrow()
    assert tuple(table.column_names) == COLUMNS
    assert is_json(table.schema.field("attrs"))
    rows = table.to_pylist()
    for row in rows:
        row["attrs"] = json.loads(row["attrs"])
    assert rows == [{c: r[c] for c in COLUMNS} for r in lock.to_records()]
    assert lock.to_arrow("test").num_rows == lock.splits["test"].count == 15
    with pytest.raises(NotFoundError, match="no split 'val'"):
        lock.to_arrow("val")


def test_a_lock_read_at_a_revision(project: Path) -> None:
    lock = vxds.load_lock("viseg_training@1", rev="v1")  # lines held one chunk each
    assert lock.to_arrow().column("split").to_pylist() == ["test"] * 4 + ["train"] * 22


def test_pandas_and_polars(project: Path) -> None:
    lock = vxds.load_lock("clinical_cohort@1")
    frame = lock.to_pandas()
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 13
    assert frame["size"].dtype == "int64"
    polars = lock.to_polars()
    assert polars.columns == list(COLUMNS)
    ages = polars["attrs"].str.json_path_match("$.age").cast(int).to_list()
    assert ages == [json.loads(r.canonical_line())["attrs"]["age"] for r in lock.resources()]


def test_vxds_query_is_callable_whichever_name_was_imported_first(project: Path) -> None:
    import vxds.query.engine  # binds vxds.query to the package

    for call in (vxds.query, vxds.api.query):
        table = call("SELECT count(*) AS n FROM resources")
        assert table.to_pylist() == [{"n": 180}]


IMPORTS = textwrap.dedent(
    """
    import sys
    import vxds

    lock = vxds.load_lock("clinical_cohort@1")
    heavy = ("duckdb", "pyarrow", "pandas", "polars")
    print(sorted(m for m in heavy if m in sys.modules))
    lock.to_arrow()
    print(sorted(m for m in heavy if m in sys.modules))
    lock.to_polars()
    print(sorted(m for m in heavy if m in sys.modules and m != "pandas"))
    """
)


def test_each_library_is_imported_only_when_called(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "['duckdb', 'pyarrow']", "['duckdb', 'polars', 'pyarrow']"]
