"""``LockedDataset.path``: a local path whose bytes are the locked ones, from a folder, a
bucket (moto's S3 server), a store, and a DICOM series' folder of members."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import vxds
from tests.cli.test_lock_s3 import T2 as S3_T2
from tests.cli.test_lock_s3 import s3_project
from tests.helpers import REPO, commit_all, git
from tests.s3server import S3
from tests.store.conftest import vxds as run
from vxds.errors import SourceError
from vxds.locks.verified_read import IntegrityError

TWO = "sub-02/anat/sub-02_T2w.nii.gz"
LOCKED = b"\x5c\x01\x00\x00volume two"
SERIES = "basel/sourcedata/sub-BS01/ses-01/dicom/T2w"


@pytest.fixture
def locked(project: Path) -> Path:
    git(project, "init", "-q", "-b", "main")
    assert run(project, "lock", "--all").exit_code == 0
    commit_all(project, "lock demo")
    return project


def test_a_folder_source_gives_the_file_itself_once_checked(locked: Path) -> None:
    lock = vxds.load_lock("demo@1", root=locked)
    path = lock.path(TWO)
    assert path == locked / "data" / TWO
    assert path.read_bytes() == LOCKED
    assert lock.path(lock.get(TWO)) == path
    path.write_bytes(b"\x5c\x01\x00\x00volume 2!!")  # same size, other bytes
    with pytest.raises(IntegrityError, match=f"{TWO}: content does not match the locked hash"):
        lock.path(TWO)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        lock.path(TWO)


def test_a_file_hashed_here_is_not_read_again_while_unchanged(locked: Path) -> None:
    lock = vxds.load_lock("demo@1", root=locked, source=str(locked / "data"))  # not the lock's cache key
    path = lock.path(TWO)
    cache = locked / ".vxds/path-hashes.json"
    assert str(path) in cache.read_text()
    before = path.stat()
    with open(path, "r+b") as fh:  # other bytes, same size, inode and modification time
        fh.write(b"\x5c\x01\x00\x00volume 2!!")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = vxds.load_lock("demo@1", root=locked, source=str(locked / "data"))
    assert again.path(TWO) == path  # the cache vouched for it: the file was not read again
    cache.unlink()
    with pytest.raises(IntegrityError):
        vxds.load_lock("demo@1", root=locked, source=str(locked / "data")).path(TWO)


def test_the_store_has_the_bytes_a_folder_source_lost(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert run(locked, "push", "--all", "--store", str(store)).exit_code == 0
    (locked / "data" / TWO).write_bytes(b"changed")
    path = vxds.load_lock("demo@1", root=locked, store=str(store)).path(TWO)
    assert path.is_relative_to(store)  # a local store's own object file
    assert path.read_bytes() == LOCKED
    for blob in (store / "blake3").rglob("*"):
        if blob.is_file():
            os.chmod(blob, 0o644)
            blob.write_bytes(b"tampered!!!!!!")
    with pytest.raises(IntegrityError):
        vxds.load_lock("demo@1", root=locked, store=str(store)).path(TWO)


def test_a_bucket_object_is_downloaded_into_the_content_addressed_cache(
    tmp_path: Path, s3_server: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket()
    s3_server.put_tree(
        bucket, "trial/", {S3_T2: b"\x5c\x01volume one", "sub-02/anat/x.nii.gz": b"\x5c\x01two"}
    )
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    monkeypatch.chdir(root)
    assert run(root, "lock", "trial").exit_code == 0
    s3_server.put_tree(bucket, "trial/", {S3_T2: b"\x5c\x01volume one, edited"})  # after the lock
    lock = vxds.load_lock("trial@1", root=root)
    resource = lock.get(S3_T2)
    path = lock.path(resource)
    assert resource.hash is not None
    algorithm, _, hexdigest = resource.hash.partition(":")
    assert path == root / ".vxds/files" / algorithm / hexdigest[:2] / hexdigest
    assert path.read_bytes() == b"\x5c\x01volume one"  # the locked version, not the edit
    assert [p.name for p in path.parent.iterdir()] == [hexdigest]  # no temporary file left
    path.write_bytes(b"\x5c\x01volume 1!!")  # a damaged copy is made again
    assert lock.path(resource).read_bytes() == b"\x5c\x01volume one"


def test_a_bucket_that_lost_the_object_falls_back_to_the_store(
    tmp_path: Path, s3_server: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket(versioned=False)
    s3_server.put_tree(bucket, "trial/", {S3_T2: b"\x5c\x01volume one"})
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    monkeypatch.chdir(root)
    store = tmp_path / "store"
    assert run(root, "lock", "trial").exit_code == 0
    assert run(root, "push", "--all", "--store", str(store)).exit_code == 0
    s3_server.client.delete_object(Bucket=bucket, Key=f"trial/{S3_T2}")
    with pytest.raises(SourceError):
        vxds.load_lock("trial@1", root=root).path(S3_T2)
    path = vxds.load_lock("trial@1", root=root, store=str(store)).path(S3_T2)
    assert path.read_bytes() == b"\x5c\x01volume one"


def _series_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("datasets.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("locks", "sample-data", "recipes"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_a_dicom_series_is_a_folder_of_its_checked_members(tmp_path: Path) -> None:
    root = _series_project(tmp_path)
    source = root / "sample-data" / SERIES
    (source / "notes.txt").write_text("not a member")
    lock = vxds.load_lock("all_basel_data@1", root=root)
    folder = lock.path(SERIES)
    assert folder.parent == root / ".vxds/series"
    assert sorted(p.name for p in folder.iterdir()) == [f"IM{k:04d}.dcm" for k in range(1, 11)]
    assert all((folder / p.name).read_bytes() == p.read_bytes() for p in folder.iterdir())
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left
    (folder / "IM0003.dcm").write_bytes(b"damaged")  # made again from the source
    assert lock.path(SERIES) == folder
    assert (folder / "IM0003.dcm").read_bytes() == (source / "IM0003.dcm").read_bytes()
    shutil.rmtree(folder)
    member = source / "IM0003.dcm"
    member.write_bytes(member.read_bytes()[:-1] + b"\1")
    with pytest.raises(IntegrityError, match=f"{SERIES}: content does not match the locked hash"):
        lock.path(SERIES)
    assert not folder.exists()


def test_a_loaded_lock_pickles_for_worker_processes_and_reopens_its_source(locked: Path) -> None:
    import pickle

    lock = vxds.load_lock("demo@1", root=locked)
    path = lock.path(TWO)  # opens the source and the hash cache
    copy = pickle.loads(pickle.dumps(lock))
    assert copy == lock
    assert copy._sources == {}
    assert copy.path(TWO) == path
    assert copy.splits["train"][0] == lock.splits["train"][0]


def test_a_zarr_is_a_folder_of_its_members_with_their_paths(tmp_path: Path) -> None:
    from tests.helpers import BIDS_EXAMPLES
    from tests.store.test_series import _project

    data = BIDS_EXAMPLES / "micr_SEMzarr"
    root = _project(tmp_path, data)
    lock = vxds.load_lock("everything@1", root=root)
    (zarr,) = [r for r in lock if r.type == "Zarr"]
    folder = lock.path(zarr)
    made = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert made == sorted(
        p.relative_to(data / zarr.id).as_posix() for p in (data / zarr.id).rglob("*") if p.is_file()
    )
    assert len(made) == zarr.attrs["files"] == 4
    assert all((folder / name).read_bytes() == (data / zarr.id / name).read_bytes() for name in made)


@pytest.mark.parametrize("name", ["../outside.dcm", "/etc/passwd", "a/./b.dcm", ""])
def test_a_member_name_that_leaves_the_series_is_refused(tmp_path: Path, name: str) -> None:
    """A name from a listing or a store's manifest becomes a path under .vxds/series/."""
    from vxds.api.series import SeriesFiles
    from vxds.resource import Resource

    member = tmp_path / "IM0001.dcm"
    member.write_bytes(b"member")
    series = Resource(id="sub-01/dicom", version="1", hash="blake3:" + "0" * 64, size=6, type="DICOMSeries")
    with pytest.raises(SourceError, match=r"^sub-01/dicom: a member is not a path inside the series"):
        SeriesFiles(series, [(name, str(member))])
