"""The embedded catalog: versions that only grow, deletions, reading as of a snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from vxds.errors import NotFoundError, SourceError
from vxds.hashing import digest_bytes
from vxds.sources import open_source
from vxds.sources.base import SourceContext
from vxds.sources.catalog.source import CatalogSource
from vxds.sources.catalog.store import Catalog

from ..dicom_files import dicom_bytes

WriteTree = Callable[[Path, Mapping[str, str | bytes]], Path]
T2 = "sub-01/anat/sub-01_T2w.nii.gz"
FILES: dict[str, str | bytes] = {
    T2: b"volume one",
    "sub-01/anat/sub-01_T2w.json": '{"EchoTime": 0.1}',
    "sub-02/anat/sub-02_T2w.nii.gz": b"volume two",
    "participants.tsv": "participant_id\tage\nsub-01\t30\nsub-02\t41\n",
    "sub-02/dicom/1.dcm": dicom_bytes(instance=1),
    "sub-02/dicom/2.dcm": dicom_bytes(instance=2),
}


@pytest.fixture
def data(tmp_path: Path, write_tree: WriteTree) -> Path:
    return write_tree(tmp_path / "data", FILES)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog.init(tmp_path / "cat.db")


def ingest(catalog: Catalog, folder: Path) -> int:
    return catalog.ingest(folder, context=SourceContext(base=folder), origin="data").id


def source(catalog: Catalog, at: str | None = None) -> CatalogSource:
    opened = open_source(f"catalog:{catalog.path}", SourceContext(base=Path("/"), at=at))
    assert isinstance(opened, CatalogSource)
    return opened


def test_an_ingest_records_what_the_folder_source_sees(catalog: Catalog, data: Path) -> None:
    from vxds.sources.folder.source import FolderSource

    assert ingest(catalog, data) == 1
    folder = FolderSource(str(data), SourceContext(base=data)).resources()
    stored = source(catalog).resources()
    assert [(r.id, r.type, r.hash, r.size, dict(r.attrs)) for r in stored] == [
        (r.id, r.type, r.hash, r.size, dict(r.attrs)) for r in folder
    ]
    assert {r.version for r in stored} == {1}
    assert source(catalog).snapshot == "1"


def test_versions_grow_and_deletions_are_marked(catalog: Catalog, data: Path) -> None:
    ingest(catalog, data)
    (data / T2).write_bytes(b"volume one, again")
    (data / "sub-02/anat/sub-02_T2w.nii.gz").unlink()
    snapshot = catalog.ingest(data, context=SourceContext(base=data), origin="data")
    assert (snapshot.id, snapshot.added, snapshot.changed, snapshot.deleted) == (2, 0, 1, 1)
    (data / "sub-02/anat/sub-02_T2w.nii.gz").write_bytes(b"volume two")
    ingest(catalog, data)
    history = catalog.history("sub-02/anat/sub-02_T2w.nii.gz")
    assert [(h.resource.version, h.added_at, h.removed_at, h.deleted) for h in history] == [
        (1, 1, 2, True),
        (2, 3, None, False),
    ]
    t2 = catalog.history(T2)
    assert [(h.resource.version, h.added_at, h.removed_at, h.deleted) for h in t2] == [
        (1, 1, 2, False),
        (2, 2, None, False),
    ]


def test_metadata_alone_makes_a_new_version(catalog: Catalog, data: Path) -> None:
    ingest(catalog, data)
    (data / "sub-01/anat/sub-01_T2w.json").write_text('{"EchoTime": 0.2}')
    ingest(catalog, data)
    now = source(catalog).get(T2)
    assert (now.version, now.attrs["EchoTime"]) == (2, 0.2)
    assert source(catalog, "1").get(T2).attrs["EchoTime"] == 0.1


def test_an_unchanged_folder_makes_an_empty_snapshot(catalog: Catalog, data: Path) -> None:
    ingest(catalog, data)
    snapshot = catalog.ingest(data, context=SourceContext(base=data), origin="data")
    assert (snapshot.id, snapshot.added, snapshot.changed, snapshot.deleted) == (2, 0, 0, 0)
    assert source(catalog, "1").resources() == source(catalog, "2").resources()


def test_reading_as_of_a_snapshot(catalog: Catalog, data: Path) -> None:
    ingest(catalog, data)
    old = source(catalog).get(T2)
    (data / T2).write_bytes(b"volume one, again")
    ingest(catalog, data)
    then, now = source(catalog, "1"), source(catalog)
    assert then.get(T2) == old
    assert then.snapshot == "1"
    assert now.get(T2).version == 2
    assert now.snapshot == "2"
    assert now.get(T2, 1) == old
    with pytest.raises(NotFoundError):
        then.get(T2, 2)  # version 2 did not exist yet at snapshot 1
    assert source(catalog, "0").resources() == []


def test_old_bytes_stay_readable(catalog: Catalog, data: Path) -> None:
    ingest(catalog, data)
    old = source(catalog).get(T2)
    (data / T2).write_bytes(b"volume one, again")
    ingest(catalog, data)
    now = source(catalog)
    with now.open(old) as fh:
        assert fh.read() == b"volume one"
    with now.open(now.get(T2)) as fh:
        assert fh.read() == b"volume one, again"
    row = now.get("participants.tsv#sub-01")
    with now.open(row) as fh:
        assert digest_bytes(fh.read()) == row.hash
    series = now.get("sub-02/dicom")
    with now.open(series) as fh:  # a series reads as its listing, whose digest is its hash
        assert digest_bytes(fh.read()) == series.hash
    slice_one = dicom_bytes(instance=1)
    assert catalog.blob(digest_bytes(slice_one)).read_bytes() == slice_one


def test_bad_snapshots_and_databases(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no snapshot '3' \(snapshots are 0 to 0\)"):
        source(catalog, "3")
    with pytest.raises(SourceError, match="does not exist"):
        open_source(f"catalog:{tmp_path / 'none.db'}", SourceContext(base=tmp_path))
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    with pytest.raises(SourceError, match="is not a vxds catalog"):
        open_source(f"catalog:{tmp_path / 'junk.db'}", SourceContext(base=tmp_path))
    sqlite3.connect(tmp_path / "other.db").close()
    with pytest.raises(SourceError, match="is not a vxds catalog"):
        Catalog(tmp_path / "other.db")
    with pytest.raises(SourceError, match="already exists"):
        Catalog.init(catalog.path)
