"""The ``fw-dataset`` layout, checked by reading it with the real fw-dataset package."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from vxds.hashing import digest_bytes
from vxds.materialize import Target, materialize

MakeTarget = Callable[..., Target]
VENV = Path(tempfile.gettempdir()) / "vxds-test-fw-dataset-venv"
VENV_02 = Path(tempfile.gettempdir()) / "vxds-test-fw-dataset-0.2-venv"
TABLES = [
    "acquisitions",
    "analyses",
    "clinical_records",
    "files",
    "resources",
    "sessions",
    "split_all",
    "subjects",
]

READER = """
import json, sys
from fw_dataset import FWDatasetClient
ds = FWDatasetClient.get_dataset_from_filesystem("fs", sys.argv[1], "fw-dataset", None)
conn = ds.connect()
print(json.dumps({
    "populated": ds.is_populated(),
    "counts": {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in sorted(ds.tables)},
    "version": ds.version,
    "name": ds.name,
    "tables": sorted(ds.tables),
    "types": conn.execute("SELECT type, count(*) FROM resources GROUP BY type ORDER BY type").fetchall(),
    "edss": conn.execute(
        "SELECT participant_id, edss FROM clinical_records WHERE age > 50 ORDER BY participant_id"
    ).fetchall(),
    "split": conn.execute("SELECT count(*) FROM split_all").fetchall(),
}))
"""


READER_02 = """
import json, sys
from fsspec.implementations.local import LocalFileSystem
from fw_dataset.admin.dataset_builder import DatasetBuilder
from fw_dataset.filesystem import get_storage_filesystem
from fw_dataset.fw_dataset import Dataset, FileSystemConfig
# FWDatasetClient.get_dataset_from_filesystem in 0.2.0 calls setup_paths() before it sets
# dataset_info (KeyError 'bucket'); these are its own steps in the order that works.
root = sys.argv[1]
description = json.loads(open(root + "/fw-dataset/latest/provenance/dataset_description.json").read())
ds = Dataset(**description, dataset_info={"bucket": root, "prefix": "fw-dataset", "type": "fs"})
ds.fs = FileSystemConfig(type_="fs", credentials=None)
ds._fs = get_storage_filesystem("fs", None)
ds.setup_paths()
conn = ds.connect()
print(json.dumps({
    "populated": DatasetBuilder.is_populated(LocalFileSystem(), sys.argv[1] + "/fw-dataset"),
    "version": ds.version,
    "counts": {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in sorted(ds.tables)},
    "subjects": conn.execute('SELECT count(*) FROM files WHERE "parents.subject" IS NOT NULL').fetchall(),
}))
"""


def _venv(where: Path, base: str, requirement: str) -> str:
    """A venv with ``requirement`` installed, cached under the temp folder."""
    python = where / "bin" / "python"
    if python.exists():
        return str(python)
    building = where.with_name(where.name + f".{os.getpid()}")
    subprocess.run([base, "-m", "venv", str(building)], check=True)
    install = subprocess.run(
        [str(building / "bin/python"), "-m", "pip", "install", "-q", requirement],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.fail(f"could not install {requirement}: {install.stderr[-2000:]}")
    os.replace(building, where)
    return str(python)


@pytest.fixture(scope="session")
def fw02_python() -> str:
    """fw-dataset 0.2.0: the newest release this machine's index offers for Python 3.10/3.11."""
    return _venv(VENV_02, sys.executable, "fw-dataset==0.2.0")


def _works(python: str) -> bool:
    check = "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)"
    try:
        return subprocess.run([python, "-c", check], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def _python_312() -> str | None:
    """A working Python 3.12 or later: this one, one on PATH, or one pyenv installed."""
    if sys.version_info >= (3, 12):
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(name) for name in ("python3.13", "python3.12")]
    candidates += [str(p) for p in sorted(pyenv.glob("3.1[2-9]*/bin/python"), reverse=True)]
    return next((c for c in candidates if c and _works(c)), None)


@pytest.fixture(scope="session")
def fw_python() -> str:
    """A Python with fw-dataset installed, in a venv cached under the temp folder."""
    python = VENV / "bin" / "python"
    if python.exists():
        return str(python)
    base = _python_312()
    if base is None:
        pytest.skip("fw-dataset needs Python 3.12 or later and none was found (PATH, pyenv)")
    building = VENV.with_name(VENV.name + f".{os.getpid()}")
    subprocess.run([base, "-m", "venv", str(building)], check=True)
    install = subprocess.run(
        [str(building / "bin/python"), "-m", "pip", "install", "-q", "fw-dataset>=0.4"],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.fail(f"could not install fw-dataset: {install.stderr[-2000:]}")
    os.replace(building, VENV)
    return str(python)


def test_the_layout(sample: Path, target: MakeTarget) -> None:
    t = target("all_basel_data", 1)
    out = sample / "out"
    assert materialize(t, out, ["fw-dataset"]).ok
    version = t.lock_digest.partition(":")[2][:16]
    base = out / "fw-dataset/versions" / version
    description = json.loads((base / "provenance/dataset_description.json").read_text())
    assert description["version"] == version
    assert description["name"] == "all_basel_data@1"
    created = dt.datetime.strptime(description["created"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert created.tzinfo is not None
    assert "." in description["created"]
    assert sorted(p.name for p in (base / "tables").iterdir()) == TABLES
    assert sorted(p.name for p in (out / "fw-dataset/latest/tables").iterdir()) == TABLES
    assert (base / "provenance/project.json").is_file()
    for parquet in (base / "tables").rglob("*.parquet"):
        assert parquet.stem == digest_bytes(parquet.read_bytes())[7:39]
    schema = json.loads((base / "schemas/resources.schema.json").read_text())
    assert schema["id"] == "resources"
    assert list(schema["properties"]) == [
        "split",
        "id",
        "version",
        "type",
        "hash",
        "size",
        "uri",
        "subject",
        "session",
        "attrs",
    ]
    assert schema["required"] == ["split", "id", "version", "type", "hash", "size", "uri", "attrs"]
    assert schema["properties"]["size"] == {"type": "integer"}
    assert schema["properties"]["subject"] == {"type": ["string", "null"]}
    records = json.loads((base / "schemas/clinical_records.schema.json").read_text())
    assert records["properties"]["edss"] == {"type": ["number", "null"]}
    assert "age" in records["required"]
    again = materialize(t, out, ["fw-dataset"])
    assert (again.placed, again.unchanged) == (
        0,
        2 * (2 * len(TABLES) + 2),
    )  # the first run's 'created' is kept


def test_fw_dataset_opens_it_and_answers_sql(sample: Path, target: MakeTarget, fw_python: str) -> None:
    t = target("all_basel_data", 1)
    out = sample / "out"
    assert materialize(t, out, ["fw-dataset"]).ok
    run = subprocess.run([fw_python, "-c", READER, str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["version"] == t.lock_digest.partition(":")[2][:16]
    assert answer["name"] == "all_basel_data@1"
    assert answer["populated"] is True
    assert answer["tables"] == TABLES
    assert answer["counts"]["files"] == answer["counts"]["resources"] == t.splits["all"].count
    assert answer["counts"]["subjects"] > 0
    assert answer["counts"]["sessions"] > 0
    assert ["ClinicalRecord", 8] in answer["types"]
    assert ["Volume", 36] in answer["types"]
    assert answer["edss"] == [["sub-BS04", 4.0], ["sub-BS07", 6.0]]
    assert answer["split"] == [[t.splits["all"].count]]


def test_fw_dataset_0_2_reports_it_populated_and_answers_sql_on_every_table(
    sample: Path, target: MakeTarget, fw02_python: str
) -> None:
    t = target("all_basel_data", 1)
    out = sample / "out"
    assert materialize(t, out, ["fw-dataset"]).ok
    run = subprocess.run(
        [fw02_python, "-c", READER_02, str(out)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["populated"] is True
    assert answer["version"] == t.lock_digest.partition(":")[2][:16]
    assert sorted(answer["counts"]) == TABLES
    assert answer["counts"]["files"] == t.splits["all"].count
    assert answer["subjects"][0][0] > 0


def test_a_lock_without_clinical_records_still_has_every_table(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    assert materialize(t, out, ["fw-dataset"]).ok
    base = out / "fw-dataset/latest"
    names = sorted(p.name for p in (base / "tables").iterdir())
    assert names == sorted(
        [
            "acquisitions",
            "analyses",
            "clinical_records",
            "files",
            "resources",
            "sessions",
            "subjects",
            *[f"split_{s}" for s in t.splits],
        ]
    )
    import pyarrow.parquet as pq

    for name in ("clinical_records", "analyses"):
        (parquet,) = (base / "tables" / name).glob("*.parquet")
        table = pq.read_table(parquet)
        assert table.num_rows == 0
        assert table.column_names[:2] == ["split", "id"] if name == "clinical_records" else ["id", "label"]
        assert (base / "schemas" / f"{name}.schema.json").is_file()
