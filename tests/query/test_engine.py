"""The query core on the example project's committed locks and across Git revisions."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import vxds
from tests.helpers import Invoke, R, commit_all, git, make_lock, make_split
from vxds.errors import LockError
from vxds.locks import digest_cache
from vxds.locks.store import write_lock
from vxds.query.engine import COLUMNS, QueryError, query
from vxds.query.render import is_json

MOVED = """
SELECT DISTINCT a.attrs->>'subject' AS subject, a.split AS before, b.split AS after
FROM resources a JOIN resources b USING (dataset, version, id)
WHERE a.rev = 'v1' AND b.rev = 'v2' AND a.split <> b.split
ORDER BY subject
"""


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_every_lock_is_a_view_and_resources_holds_them_all(project: Path) -> None:
    table = query("SELECT dataset, version, split, count(*) AS n FROM resources GROUP BY ALL ORDER BY ALL")
    expected = [
        (path.parts[-3], int(path.parts[-2]), path.name.split(".")[1], _lines(path))
        for path in sorted((project / "locks").glob("*/*/resources.*.jsonl"))
    ]
    assert sorted(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)) == expected
    one = query('SELECT * FROM "viseg_training@1"')
    assert tuple(one.column_names) == COLUMNS
    assert one.num_rows == 26
    assert set(one.column("dataset").to_pylist()) == {"viseg_training"}


def test_columns_are_the_lines_fields(project: Path) -> None:
    first = (project / "locks/clinical_cohort/1/resources.cohort.jsonl").read_bytes().splitlines()[0]
    record = json.loads(first)
    table = query(f"SELECT * FROM resources WHERE id = '{record['id']}' AND dataset = 'clinical_cohort'")
    row = table.to_pylist()[0]
    assert is_json(table.schema.field("attrs"))
    assert json.loads(row.pop("attrs")) == record["attrs"]
    assert row == {
        "dataset": "clinical_cohort",
        "version": 1,
        "split": "cohort",
        "id": record["id"],
        "type": "ClinicalRecord",
        "resource_version": record["version"],
        "hash": record["hash"],
        "size": record["size"],
        "uri": record["uri"],
    }
    sql = "SELECT attrs->>'subject' AS s, (attrs->>'age')::INT AS age FROM \"clinical_cohort@1\""
    ages = query(sql + " WHERE s = 'BS01'")
    assert ages.to_pylist() == [{"s": "BS01", "age": 34}]


def test_a_subject_that_moved_between_splits_is_one_statement(project: Path, invoke: Invoke) -> None:
    manifest = project / "datasets.yaml"
    text = manifest.read_text()
    manifest.write_text(
        text.replace(
            "entrypoint: viseg_training\n", "entrypoint: viseg_training\n  params: {test_every: 3}\n", 1
        )
    )
    assert invoke("lock", "viseg_training@1").exit_code == 0
    commit_all(project, "hold out every third subject")
    git(project, "tag", "v2")
    moved = query(MOVED, rev=["v1", "v2"])
    assert moved.to_pylist() == [
        {"subject": "BS03", "before": "train", "after": "test"},
        {"subject": "BS04", "before": "test", "after": "train"},
        {"subject": "BS07", "before": "train", "after": "test"},
        {"subject": "ZH02", "before": "test", "after": "train"},
        {"subject": "ZH03", "before": "train", "after": "test"},
    ]
    revs = query("SELECT DISTINCT rev FROM resources ORDER BY rev", rev=["v2", "v1", "v2"])
    assert revs.column("rev").to_pylist() == ["v1", "v2"]
    at_v1 = query(
        'SELECT split, count(*) AS n FROM "v1:viseg_training@1" GROUP BY ALL ORDER BY ALL', rev=["v1", "HEAD"]
    )
    assert at_v1.to_pylist() == [{"split": "test", "n": 4}, {"split": "train", "n": 22}]
    single = query("SELECT count(*) AS n FROM \"viseg_training@1\" WHERE split = 'test'", rev="HEAD")
    assert single.to_pylist() == [{"n": 10}]
    assert vxds.query("SELECT count(*) AS n FROM resources WHERE rev = 'main'", rev="main").to_pylist() == [
        {"n": 180}
    ]


def test_revisions_are_read_from_git_objects_not_the_working_tree(project: Path) -> None:
    for path in (project / "locks").glob("*/*/resources.*.jsonl"):
        path.write_bytes(b"")  # the working tree is broken; HEAD is not
    assert query("SELECT count(*) AS n FROM resources", rev="HEAD").to_pylist() == [{"n": 180}]
    with pytest.raises(
        LockError, match=r"all_basel_data/1: corrupt lock: .*resources\.all\.jsonl has 0 lines"
    ):
        query("SELECT count(*) FROM resources")


def test_a_corrupt_lock_at_a_revision_is_named_by_revision_and_path(project: Path) -> None:
    split = project / "locks/viseg_training/1/resources.test.jsonl"
    split.write_bytes(split.read_bytes()[:-200] + b"\n")
    commit_all(project, "broken")
    with pytest.raises(LockError) as caught:
        query("SELECT 1", rev="HEAD")
    message = caught.value.message
    assert message.startswith("HEAD:locks/viseg_training/1: corrupt lock: resources.test.jsonl")
    assert "vxds-query-" not in message


def test_sql_errors_are_one_line_usage_errors(project: Path) -> None:
    with pytest.raises(
        QueryError, match=r'\Athe query failed: Parser Error: syntax error at or near "SELEC"\Z'
    ):
        query("SELEC 1")
    with pytest.raises(QueryError, match='Referenced column "nope" not found') as caught:
        query("SELECT nope FROM resources")
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 2


def test_a_project_without_locks_has_an_empty_typed_resources_view(tmp_path: Path) -> None:
    (tmp_path / "datasets.yaml").write_text("[]\n")
    table = query("SELECT * FROM resources", root=tmp_path)
    assert table.num_rows == 0
    assert tuple(table.column_names) == COLUMNS
    assert str(table.schema.field("version").type) == "int64"


def test_an_empty_split_and_a_quote_in_a_revision(project: Path) -> None:
    write_lock(make_lock(train=make_split(R("a", subject="01")), test=make_split()), project / "locks/d/1")
    commit_all(project, "a lock with an empty split")
    git(project, "tag", "it's")
    sql = "SELECT split, id, attrs->>'subject' AS s FROM \"it's:d@1\" ORDER BY ALL"
    assert query(sql, rev=["it's", "v1"]).to_pylist() == [{"split": "train", "id": "a", "s": "01"}]
    assert query("SELECT count(*) AS n FROM \"d@1\" WHERE split = 'test'").to_pylist() == [{"n": 0}]


def test_two_folders_holding_one_lock_are_named(project: Path) -> None:
    shutil.copytree(project / "locks/viseg_training/1", project / "locks/viseg_training/3")
    with pytest.raises(
        LockError, match=r"\Alocks/viseg_training/3: holds viseg_training@1, as locks/viseg_training/1 does"
    ):
        query("SELECT 1")
    commit_all(project, "a copied lock")
    with pytest.raises(
        LockError, match=r"\AHEAD:locks/viseg_training/3: holds viseg_training@1, as HEAD:locks/"
    ):
        query("SELECT 1", rev="HEAD")


def test_a_lock_file_edited_after_a_query_is_read_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat-keyed digests spare a second query the re-hashing, never an edited file."""
    monkeypatch.setattr(digest_cache, "RACY_NS", 0)  # the fixture's files are seconds old
    assert query("SELECT count(*) AS n FROM resources").to_pylist() == [{"n": 180}]
    assert (project / ".vxds" / "shard-digests.json").is_file()
    path = project / "locks/all_basel_data/1/resources.all.jsonl"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[data.index(b'"size":') + 7] ^= 1  # one digit of a size: same length, other bytes
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before; ctime moves
    with pytest.raises(LockError, match=r"all_basel_data/1: corrupt lock: .*resources\.all\.jsonl"):
        query("SELECT count(*) FROM resources")
