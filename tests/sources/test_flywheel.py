"""Flywheel snapshots as a source, on snapshots built by tests/flywheel_snapshot.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.flywheel_snapshot import build
from vxds.errors import SourceError
from vxds.sources import open_source
from vxds.sources.base import SourceContext
from vxds.sources.flywheel import FlywheelSource, file_row, flywheel_hash

T2 = "MS-Lesions/BS01/ses-01/T2w/sub-BS01_ses-01_T2w.nii.gz"


def source(path: Path, **options: object) -> FlywheelSource:
    opened = open_source(f"flywheel:{path.name}", SourceContext(base=path.parent, options=options))
    assert isinstance(opened, FlywheelSource)
    return opened


def test_files_become_resources_with_ids_from_labels(tmp_path: Path) -> None:
    found = source(build(tmp_path / "snapshot.db", subjects=2, sessions=2)).resources()
    assert len(found) == 1 + 2 * 2 * (
        3 * 2 + 2
    )  # project table; per session 3 x (nifti, dicom), report, mask
    t2 = next(r for r in found if r.id == T2)
    assert t2.type == "Volume"
    assert isinstance(t2.version, int)
    assert t2.hash is not None
    assert t2.hash.startswith("sha384:")
    assert len(t2.hash) == 7 + 96
    assert t2.attrs["subject"] == "BS01"
    assert t2.attrs["session"] == "ses-01"
    assert t2.attrs["acquisition"] == "T2w"
    assert t2.attrs["modality"] == "MR"
    assert t2.attrs["classification"] == {"Intent": ["Structural"], "Measurement": ["T2"]}
    assert t2.attrs["suffix"] == "T2w"
    assert set(t2.attrs["info"]) == {"EchoTime", "MagneticFieldStrength"}
    types = {r.id.rsplit("/", 1)[-1]: r.type for r in found if "BS02/ses-02" in r.id}
    assert types["sub-BS02_ses-02_FLAIR.dicom.zip"] == "DICOMSeries"
    assert types["sub-BS02_ses-02_desc-lesion_mask.nii.gz"] == "Mask"
    assert types["radiology_report.pdf"] == "File"
    mask = next(r for r in found if r.id.endswith("sub-BS01_ses-01_desc-lesion_mask.nii.gz"))
    assert mask.id == "MS-Lesions/BS01/ses-01/analyses/lesion-seg/sub-BS01_ses-01_desc-lesion_mask.nii.gz"
    assert "MS-Lesions/participants.tsv" in {r.id for r in found}


def test_a_gzipped_snapshot_reads_the_same(tmp_path: Path) -> None:
    plain = source(build(tmp_path / "snapshot.db", seed=3))
    packed = source(build(tmp_path / "snapshot.db.gz", seed=3))
    assert plain.resources() == packed.resources()
    assert plain.snapshot == packed.snapshot
    assert plain.snapshot.startswith("blake3:")
    assert source(build(tmp_path / "other.db", seed=4)).snapshot != plain.snapshot


def test_real_rows_keep_id_and_version_under_id_and_data_as_bytes(tmp_path: Path) -> None:
    path = build(tmp_path / "snapshot.db", subjects=1, sessions=1)
    db = sqlite3.connect(path)
    rid, data = db.execute(
        "SELECT id, data FROM file WHERE CAST(data AS TEXT) LIKE '%BS01_ses-01_T2w.nii.gz%'"
    ).fetchone()
    db.close()
    assert isinstance(data, bytes)
    row = orjson.loads(data)
    assert set(row["_id"]) == {"file_id", "version"}
    assert row["uuid"] == rid
    assert "version" not in row
    t2 = source(path).get(T2)
    assert t2.version == row["_id"]["version"]
    assert t2.hash == "sha384:" + row["hash"].split("-")[2]


def test_the_older_flat_shape_reads_the_same(tmp_path: Path) -> None:
    real = source(build(tmp_path / "real.db", seed=5)).resources()
    flat_path = build(tmp_path / "flat.db", seed=5, shape="flat")
    db = sqlite3.connect(flat_path)
    data = db.execute("SELECT data FROM file LIMIT 1").fetchone()[0]
    db.close()
    assert isinstance(data, str)
    assert isinstance(orjson.loads(data)["version"], int)
    assert source(flat_path).resources() == real


def test_file_row_maps_as_fw_dataset_does() -> None:
    real = {"_id": {"file_id": "f1", "version": 3}, "uuid": "u1", "name": "a.nii"}
    assert file_row(real) == {"file_id": "f1", "version": 3, "id": "u1", "uuid": "u1", "name": "a.nii"}
    flat = {"_id": "u1", "file_id": "f1", "version": 3, "name": "a.nii"}
    assert file_row(flat) is flat


def test_flywheel_hashes() -> None:
    assert flywheel_hash("v0-sha384-ABC123") == "sha384:abc123"
    assert flywheel_hash("md5:00ff") == "md5:00ff"
    assert flywheel_hash("nonsense") is None
    assert flywheel_hash(None) is None


def test_containers_sharing_a_label_get_distinct_ids(tmp_path: Path) -> None:
    path = build(tmp_path / "snapshot.db", subjects=1, sessions=1)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE acquisition SET data = json_set(data, '$.label', 'T2w')")
    db.close()
    ids = [r.id for r in source(path).resources() if r.id.endswith(".nii.gz") and "analyses" not in r.id]
    assert len(ids) == len(set(ids)) == 3
    assert all("/T2w~" in rid for rid in ids)


def test_open_needs_a_mirror(tmp_path: Path) -> None:
    path = build(tmp_path / "snapshot.db", subjects=1, sessions=1)
    resource = source(path).get(T2)
    with pytest.raises(SourceError, match=f"metadata only; no bytes for {T2}"):
        source(path).open(resource)
    mirror = tmp_path / "mirror"
    (mirror / T2).parent.mkdir(parents=True)
    (mirror / T2).write_bytes(b"nifti bytes")
    with source(path, flywheel={"mirror": "mirror"}).open(resource) as fh:
        assert fh.read() == b"nifti bytes"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("DROP TABLE analysis", "is not a Flywheel snapshot (table analysis: no such table: analysis)"),
        ("UPDATE file SET data = '{oops' WHERE rowid = 1", "data is not JSON"),
        ("DELETE FROM session", "is not in the snapshot"),
        (
            "UPDATE file SET data = json_set(CAST(data AS TEXT), '$._id.version', 'x') WHERE rowid = 1",
            "'version' must be an integer",
        ),
        (
            "UPDATE file SET data = json_remove(CAST(data AS TEXT), '$._id.version') WHERE rowid = 1",
            "'version' must be an integer, got None",
        ),
    ],
)
def test_malformed_snapshots_are_one_line_errors(tmp_path: Path, damage: str, message: str) -> None:
    path = build(tmp_path / "snapshot.db", subjects=1, sessions=1)
    db = sqlite3.connect(path)
    with db:
        db.execute(damage)
    db.close()
    with pytest.raises(SourceError) as caught:
        source(path).resources()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("source 'flywheel:snapshot.db': ")


def test_missing_and_unreadable_snapshots(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"snapshot .*none.db does not exist"):
        source(tmp_path / "none.db")
    (tmp_path / "bad.db.gz").write_bytes(b"not gzip")
    with pytest.raises(SourceError, match=r"bad\.db\.gz is not a gzip file"):
        source(tmp_path / "bad.db.gz").resources()
    (tmp_path / "bad.db").write_bytes(b"not sqlite either")
    with pytest.raises(SourceError, match=r"bad\.db is not a Flywheel snapshot"):
        source(tmp_path / "bad.db").resources()
