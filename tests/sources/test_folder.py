"""vxds/sources/folder/source.py: a folder tree as a source, over a built tree and the sample data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vxds import hashing
from vxds.errors import NotFoundError, SourceError
from vxds.hashing import digest_bytes, digest_json
from vxds.resource import Resource
from vxds.sources import open_source, scheme_of
from vxds.sources.base import SourceContext
from vxds.sources.folder import source as folder_module
from vxds.sources.folder.source import FolderSource, folder_path

from ..dicom_files import CT_UID, MR_UID, dicom_bytes

WriteTree = Callable[..., Path]
ROOT = Path(__file__).resolve().parents[2]
NIFTI = b"\x5c\x01\x00\x00" + bytes(64)
ANAT = "sub-01/ses-01/anat"
TREE: dict[str, str | bytes] = {
    "dataset_description.json": '{"Name": "tiny"}',
    "FLAIR.json": '{"Manufacturer": "Acme", "EchoTime": 0.1}',
    "participants.tsv": "participant_id\tage\tsex\nsub-01\t30\tF\nsub-02\tn/a\tM\n",
    f"{ANAT}/sub-01_ses-01_FLAIR.nii.gz": NIFTI + b"flair",
    f"{ANAT}/sub-01_ses-01_FLAIR.json": '{"EchoTime": 0.2}',
    f"{ANAT}/sub-01_ses-01_run-2_T2w.nii.gz": NIFTI + b"t2w",
    f"{ANAT}/.sub-01_ses-01_T2w.nii.gz.swp": b"editor junk",
    "derivatives/lesions/dataset_description.json": '{"Name": "lesions"}',
    f"derivatives/lesions/{ANAT}/sub-01_ses-01_desc-lesion_mask.nii.gz": NIFTI + b"mask",
    f"derivatives/lesions/{ANAT}/sub-01_ses-01_FLAIR.nii.gz": NIFTI + b"resampled",
    "sourcedata/sub-01/dicom/T2w/0001.dcm": dicom_bytes(instance=1),
    "sourcedata/sub-01/dicom/T2w/0002.DCM": dicom_bytes(instance=2),
    "notes.txt": "free text",
    ".hidden": "secret",
    ".git/config": "[core]",
}


def _source(root: Path, cache_dir: Path | None = None) -> FolderSource:
    return FolderSource(str(root), SourceContext(base=root.parent, cache_dir=cache_dir))


@pytest.fixture
def tree(tmp_path: Path, write_tree: WriteTree) -> Path:
    return write_tree(tmp_path / "data", TREE)


def _by_id(source: FolderSource) -> dict[str, Resource]:
    return {r.id: r for r in source.resources()}


def test_ids_types_and_sorting(tree: Path) -> None:
    source = _source(tree)
    found = {r.id: r.type for r in source.resources()}
    assert found == {
        "FLAIR.json": "File",
        "dataset_description.json": "File",
        "derivatives/lesions/dataset_description.json": "File",
        f"derivatives/lesions/{ANAT}/sub-01_ses-01_FLAIR.nii.gz": "Volume",
        f"derivatives/lesions/{ANAT}/sub-01_ses-01_desc-lesion_mask.nii.gz": "Mask",
        "notes.txt": "File",
        "participants.tsv": "Table",
        "participants.tsv#sub-01": "ClinicalRecord",
        "participants.tsv#sub-02": "ClinicalRecord",
        "sourcedata/sub-01/dicom/T2w": "DICOMSeries",
        f"{ANAT}/sub-01_ses-01_FLAIR.json": "File",
        f"{ANAT}/sub-01_ses-01_FLAIR.nii.gz": "Volume",
        f"{ANAT}/sub-01_ses-01_run-2_T2w.nii.gz": "Volume",
    }
    ids = [r.id for r in source.resources()]
    assert ids == sorted(ids)
    assert not any(part.startswith(".") for i in ids for part in i.split("/"))


def test_file_resource_fields(tree: Path) -> None:
    t2w = _source(tree).get(f"{ANAT}/sub-01_ses-01_run-2_T2w.nii.gz")
    digest = digest_bytes(NIFTI + b"t2w")
    assert (t2w.version, t2w.hash, t2w.size, t2w.uri) == (digest, digest, len(NIFTI) + 3, t2w.id)
    assert dict(t2w.attrs) == {
        "subject": "01",
        "session": "01",
        "datatype": "anat",
        "run": "2",
        "suffix": "T2w",
        "extension": ".nii.gz",
    }


def test_sidecars_inherit_and_specific_ones_win(tree: Path) -> None:
    flair = _source(tree).get(f"{ANAT}/sub-01_ses-01_FLAIR.nii.gz")
    assert flair.attrs["Manufacturer"] == "Acme"
    assert flair.attrs["EchoTime"] == 0.2
    assert flair.attrs["suffix"] == "FLAIR"


def test_dataset_description_stops_inheritance(tree: Path) -> None:
    resampled = _source(tree).get(f"derivatives/lesions/{ANAT}/sub-01_ses-01_FLAIR.nii.gz")
    assert "Manufacturer" not in resampled.attrs
    assert "EchoTime" not in resampled.attrs


def test_table_and_clinical_records(tree: Path) -> None:
    source = _source(tree)
    table = source.get("participants.tsv")
    assert table.attrs["columns"] == ["participant_id", "age", "sex"]
    assert table.attrs["rows"] == 2
    first, second = source.get("participants.tsv#sub-01"), source.get("participants.tsv#sub-02")
    assert dict(first.attrs) == {"participant_id": "sub-01", "age": 30, "sex": "F", "subject": "01"}
    assert second.attrs["age"] is None
    assert second.attrs["subject"] == "02"
    row = {"participant_id": "sub-01", "age": 30, "sex": "F"}
    assert first.hash == first.version == digest_json(row)
    assert first.uri == "participants.tsv#sub-01"


def test_dicom_folder_is_one_series(tree: Path) -> None:
    series = _source(tree).get("sourcedata/sub-01/dicom/T2w")
    one, two = dicom_bytes(instance=1), dicom_bytes(instance=2)
    listing = [["0001.dcm", digest_bytes(one)], ["0002.DCM", digest_bytes(two)]]
    assert series.hash == series.version == digest_json(listing)
    assert series.size == len(one) + len(two)
    assert dict(series.attrs) == {
        "subject": "01",
        "files": 2,
        "Modality": "MR",
        "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.1",
        "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.9",
        "SeriesNumber": 1,
    }


def test_dicom_is_found_by_content_and_grouped_by_series(tmp_path: Path, write_tree: WriteTree) -> None:
    ct = {"Modality": "CT", "SeriesNumber": 3, "SeriesDescription": "head"}
    root = write_tree(
        tmp_path / "data",
        {
            "s/IM0000": dicom_bytes(instance=1),  # no extension, as scanners export them
            "s/IM0001": dicom_bytes(instance=2),
            "s/notes.txt": "not DICOM",
            "s/fake.dcm": b"DICM but no preamble",
            "m/IM0000": dicom_bytes(instance=1, SeriesNumber=7, MagneticFieldStrength=3),
            "m/IM0001": dicom_bytes(CT_UID, instance=1, **ct),
            "m/IM0002": dicom_bytes(CT_UID, instance=2, **ct),
            "IM0009": dicom_bytes(CT_UID, instance=1, **ct),
        },
    )
    found = {r.id: r for r in _source(root).resources()}
    assert {i: r.type for i, r in found.items()} == {
        "s": "DICOMSeries",
        "s/notes.txt": "File",
        "s/fake.dcm": "File",
        "m/series-7": "DICOMSeries",
        "m/series-3": "DICOMSeries",
        "series-3": "DICOMSeries",
    }
    mr, ct_series = found["m/series-7"], found["m/series-3"]
    assert (mr.attrs["Modality"], mr.attrs["files"], mr.attrs["MagneticFieldStrength"]) == ("MR", 1, 3.0)
    assert (ct_series.attrs["Modality"], ct_series.attrs["files"], ct_series.uri) == ("CT", 2, "m")
    assert ct_series.attrs["SeriesDescription"] == "head"
    source = _source(root)
    assert [n for n, _ in source.members(source.get("m/series-3"))] == ["IM0001", "IM0002"]
    assert [n for n, _ in source.members(source.get("s"))] == ["IM0000", "IM0001"]
    assert [n for n, _ in source.members(source.get("series-3"))] == ["IM0009"]


def test_series_of_a_folder_with_one_number_twice_are_named_by_uid(
    tmp_path: Path, write_tree: WriteTree
) -> None:
    root = write_tree(tmp_path / "data", {"m/a": dicom_bytes(), "m/b": dicom_bytes(CT_UID)})
    assert [r.id for r in _source(root).resources()] == [f"m/series-{MR_UID}", f"m/series-{CT_UID}"]


def test_snapshot_changes_with_a_byte_and_only_then(tree: Path) -> None:
    before = _source(tree).snapshot
    target = tree / "notes.txt"
    assert _source(tree).snapshot == before
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert _source(tree).snapshot == before
    target.write_text("free texT")
    assert _source(tree).snapshot != before
    target.write_text("free text")
    assert _source(tree).snapshot == before
    (tree / ".another-hidden").write_text("x")
    assert _source(tree).snapshot == before


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = hashing.hash_file_key

    def counting(path: str | os.PathLike[str]) -> tuple[str, hashing.StatKey]:
        calls.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(hashing, "hash_file_key", counting)
    return calls


def _age(tree: Path, seconds: int = 3600) -> None:
    """Date every file back, so the caches trust them (files changed just now are racy)."""
    for path in [tree, *tree.rglob("*")]:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def test_stat_cache_avoids_rehashing(tree: Path, tmp_path: Path, hash_calls: list[str]) -> None:
    cache = tmp_path / "cache"
    _age(tree)
    first = list(_source(tree, cache).resources())
    assert len(hash_calls) == 12  # every visible file, DICOM members included
    assert (cache / "dicom.json").is_file()
    assert (cache / "hashes.json").is_file()
    hash_calls.clear()
    second = list(_source(tree, cache).resources())
    assert hash_calls == []
    assert second == first
    target = tree / "notes.txt"
    target.write_text("free texT")
    third = _by_id(_source(tree, cache))
    assert hash_calls == [str(target)]
    assert third["notes.txt"].hash == digest_bytes(b"free texT")


def test_files_changed_just_now_are_not_cached(tree: Path, tmp_path: Path, hash_calls: list[str]) -> None:
    """Same size, same timestamp tick: only re-hashing can see such a change."""
    cache = tmp_path / "cache"
    _source(tree, cache).resources()
    hash_calls.clear()
    _source(tree, cache).resources()
    assert len(hash_calls) == 12


def test_index_cache_rebuilds_after_a_change(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _age(tree)
    first = _by_id(_source(tree, cache))
    assert list((cache / "folders").glob("*/index.json"))
    assert _by_id(_source(tree, cache)) == first
    (tree / "participants.tsv").write_text("participant_id\tage\nsub-01\t31\n")
    (tree / "sub-02").mkdir()
    (tree / "sub-02" / "extra.txt").write_text("new")
    changed = _by_id(_source(tree, cache))
    assert changed["participants.tsv#sub-01"].attrs["age"] == 31
    assert "sub-02/extra.txt" in changed
    assert len(list((cache / "folders").glob("*/index.json"))) == 1


def test_no_cache_dir_hashes_every_time(tree: Path, hash_calls: list[str]) -> None:
    _source(tree).resources()
    _source(tree).resources()
    assert len(hash_calls) == 24


def test_open_reads_bytes(tree: Path) -> None:
    source = _source(tree)
    with source.open(source.get("notes.txt")) as fh:
        assert fh.read() == b"free text"
    with source.open(source.get("participants.tsv#sub-01")) as fh:
        assert fh.read() == b'{"age":30,"participant_id":"sub-01","sex":"F"}'  # the row, as hashed


def test_clinical_record_bytes_match_its_hash(tree: Path) -> None:
    source = _source(tree)
    record = source.get("participants.tsv#sub-01")
    with source.open(record) as fh:
        data = fh.read()
    assert (digest_bytes(data), len(data)) == (record.hash, record.size)


@pytest.mark.parametrize("uri", ["../outside.txt", "/etc/hostname", "a/../../outside.txt"])
def test_open_refuses_paths_outside_the_folder(tree: Path, uri: str) -> None:
    (tree.parent / "outside.txt").write_text("not yours")
    with pytest.raises(SourceError, match="points outside the source folder"):
        _source(tree).open(Resource(id="x", version=1, uri=uri))


def test_open_refuses_a_series_and_reports_missing_files(tree: Path) -> None:
    source = _source(tree)
    with pytest.raises(SourceError, match="is a DICOM series"):
        source.open(source.get("sourcedata/sub-01/dicom/T2w"))
    with pytest.raises(SourceError, match=r"cannot open gone\.txt"):
        source.open(Resource(id="gone.txt", version=1))


def test_a_symlink_leading_outside_is_refused_one_inside_is_read(
    tmp_path: Path, write_tree: WriteTree
) -> None:
    root = write_tree(tmp_path / "data", {"a.txt": "a"})
    (tmp_path / "outside.txt").write_text("outside")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(SourceError, match=r"cannot lock 'link\.txt': a symbolic link to .*outside\.txt'"):
        _source(root).resources()
    (root / "link.txt").unlink()
    (root / "link.txt").symlink_to("a.txt")
    source = _source(root)
    with source.open(source.get("link.txt")) as fh:
        assert fh.read() == b"a"


def test_symlinked_folders_are_not_followed(tmp_path: Path, write_tree: WriteTree) -> None:
    root = write_tree(tmp_path / "data", {"a.txt": "a"})
    write_tree(tmp_path / "elsewhere", {"b.txt": "b"})
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert list(_by_id(_source(root))) == ["a.txt"]


def test_get_with_wrong_version_or_unknown_id(tree: Path) -> None:
    source = _source(tree)
    with pytest.raises(NotFoundError, match="no resource 'nope'"):
        source.get("nope")
    with pytest.raises(NotFoundError, match="keeps only the current version"):
        source.get("notes.txt", "blake3:00")
    assert source.get("notes.txt", digest_bytes(b"free text")).id == "notes.txt"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"participants.tsv": "id\tx\na\t1\t2\n"}, "table participants.tsv, line 2: 3 cells"),
        ({"T2w.json": "{not json", "sub-01_T2w.nii": b"x"}, "sidecar T2w.json: not readable JSON"),
        ({"T2w.json": "[1]", "sub-01_T2w.nii": b"x"}, "sidecar T2w.json: expected a JSON object"),
    ],
)
def test_bad_tables_and_sidecars_are_source_errors(
    tmp_path: Path, write_tree: WriteTree, files: dict[str, str | bytes], message: str
) -> None:
    root = write_tree(tmp_path / "data", files)
    with pytest.raises(SourceError, match=message):
        _source(root).resources()


def test_urls_and_missing_folders(tmp_path: Path) -> None:
    assert folder_path("file:///abs/x", tmp_path) == Path("/abs/x")
    assert folder_path("file:rel", tmp_path) == tmp_path / "rel"
    assert folder_path("./rel", tmp_path) == tmp_path / "rel"
    assert (scheme_of("./data"), scheme_of("C:/data"), scheme_of("S3://b/p")) == (
        "file",
        "file",
        "s3",
    )
    with pytest.raises(SourceError, match="does not exist"):
        open_source("./missing", SourceContext(base=tmp_path))
    with pytest.raises(SourceError, match="no source handles the scheme 'nosuch'"):
        open_source("nosuch://x", SourceContext(base=tmp_path))


# --- the repository's sample data --------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> dict[str, Resource]:
    return _by_id(FolderSource("./sample-data", SourceContext(base=ROOT)))


def test_sample_zurich_flair_inherits_the_trial_sidecar(sample: dict[str, Resource]) -> None:
    flair = sample["zurich/sub-ZH01/ses-01/anat/sub-ZH01_ses-01_FLAIR.nii.gz"]
    assert flair.type == "Volume"
    assert flair.attrs["InstitutionName"] == "University Hospital Zurich"  # zurich/FLAIR.json
    assert flair.attrs["Manufacturer"] == "Philips"
    assert flair.attrs["EchoTime"] == 0.14  # its own sidecar
    assert (flair.attrs["subject"], flair.attrs["session"], flair.attrs["suffix"]) == (
        "ZH01",
        "01",
        "FLAIR",
    )
    basel = sample["basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_FLAIR.nii.gz"]
    assert basel.attrs["InstitutionName"] == "University Hospital Basel"


def test_sample_masks_and_series(sample: dict[str, Resource]) -> None:
    masks = [r for r in sample.values() if r.id.endswith("_mask.nii.gz")]
    assert masks
    assert all(r.type == "Mask" and r.attrs["desc"] == "lesion" for r in masks)
    series = sample["basel/sourcedata/sub-BS01/ses-01/dicom/T2w"]
    assert (series.type, series.attrs["files"], series.attrs["subject"]) == (
        "DICOMSeries",
        10,
        "BS01",
    )


def test_sample_participant_rows(sample: dict[str, Resource]) -> None:
    rows = [r for r in sample.values() if r.type == "ClinicalRecord"]
    assert len(rows) == 14
    zh02 = sample["zurich/participants.tsv#sub-ZH02"]
    assert dict(zh02.attrs) == {
        "participant_id": "sub-ZH02",
        "age": None,
        "sex": "M",
        "site": "USZ",
        "edss": 2.0,
        "subject": "ZH02",
    }


def test_sample_snapshot_matches_the_committed_locks() -> None:
    text = (ROOT / "locks" / "viseg_training" / "1" / "lock.toml").read_text()
    snapshot = FolderSource("./sample-data", SourceContext(base=ROOT)).snapshot
    assert f'snapshot = "{snapshot}"' in text


@pytest.fixture
def scandirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Folders listed with os.scandir by the folder source."""
    calls: list[str] = []
    real = os.scandir

    def counting(path: str) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(folder_module.os, "scandir", counting)
    return calls


def test_unchanged_folders_are_not_listed_again(tree: Path, tmp_path: Path, scandirs: list[str]) -> None:
    cache = tmp_path / "cache"
    _age(tree)
    first = _by_id(_source(tree, cache))
    assert scandirs  # the first scan lists every folder
    scandirs.clear()
    assert _by_id(_source(tree, cache)) == first
    assert scandirs == []  # known unchanged from stats alone
    (tree / "notes.txt").write_text("edited in place")  # the folder's mtime does not change
    assert _by_id(_source(tree, cache))["notes.txt"].hash == digest_bytes(b"edited in place")
    assert scandirs == []
    (tree / "sub-01" / "new.txt").write_text("added")  # sub-01's listing changes
    assert "sub-01/new.txt" in _by_id(_source(tree, cache))
    assert scandirs == [str(tree / "sub-01")]
