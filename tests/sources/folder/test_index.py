"""vxds/sources/folder/index.py: one changed file rebuilds its folder, and the result is
exactly what a scan with no cache gives (real BIDS examples, DICOM series, a Zarr store)."""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import nibabel
import numpy as np
import orjson
import pytest

from tests.helpers import BIDS_EXAMPLES
from vxds import hashing
from vxds.hashing import StatKey
from vxds.resource import Resource
from vxds.sources.base import SourceContext
from vxds.sources.folder import source, walk
from vxds.sources.folder.index import FOLDERS, Group, groups
from vxds.sources.folder.source import FolderSource
from vxds.sources.folder.walk import WalkedFile

from ...dicom_files import CT_UID, MR_UID, dicom_bytes

Change = Callable[[Path], list[Path]]  # edits the tree, returns the paths it wrote


def _source(root: Path, cache: Path | None) -> FolderSource:
    return FolderSource(str(root), SourceContext(base=root.parent, cache_dir=cache))


def _scan(root: Path, cache: Path | None) -> tuple[str, list[bytes], dict[str, bytes]]:
    """Everything a scan gives: the snapshot, each resource (sorted), each row's bytes."""
    scanned = _source(root, cache)
    found = scanned.resources()
    rows = {r.id: scanned.open(r).read() for r in found if r.type == "ClinicalRecord"}
    return scanned.snapshot, [_line(r) for r in found], rows


def _line(r: Resource) -> bytes:
    return orjson.dumps(
        [r.id, r.version, r.type, r.hash, r.size, r.uri, r.attrs], option=orjson.OPT_SORT_KEYS
    )


def _settle(paths: list[Path]) -> None:
    """Date paths back (with their folders), so the caches trust them; each a different time."""
    when = time.time_ns() - 600 * 10**9
    for n, path in enumerate(sorted({p for written in paths for p in (written, written.parent)})):
        if path.exists():
            os.utime(path, ns=(when + n, when + n))


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the folder source reads to hash, in order."""
    calls: list[str] = []
    real = hashing.hash_file_key

    def spy(path: str | os.PathLike[str]) -> tuple[str, StatKey]:
        calls.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(hashing, "hash_file_key", spy)
    return calls


def _tree(tmp_path: Path) -> Path:
    """ds001 (sidecars inherited from the root, participants.tsv), a Zarr store, DICOM series."""
    root = tmp_path / "data"
    shutil.copytree(BIDS_EXAMPLES / "ds001", root)
    zarr = BIDS_EXAMPLES / "micr_SEMzarr/sub-01/ses-01/micr/sub-01_ses-01_sample-A_SPIM.ome.zarr"
    shutil.copytree(zarr, root / "sub-01/micr" / zarr.name)
    scans = root / "sub-02/dicom"
    scans.mkdir(parents=True)
    for n in range(3):
        (scans / f"IM000{n}").write_bytes(dicom_bytes(MR_UID, instance=n + 1, SeriesNumber=2))
    (scans / "IM0009").write_bytes(dicom_bytes(CT_UID, instance=1, SeriesNumber=3))
    (root / T1W).write_bytes(_volume((4, 5, 6), (1.0, 1.0, 1.2)))  # bids-examples' are empty
    _settle([*root.rglob("*"), root])
    return root


def _volume(shape: tuple[int, ...], zooms: tuple[float, ...]) -> bytes:
    """A gzipped NIfTI-1 volume of zeros, as nibabel writes it."""
    image = nibabel.Nifti1Image(np.zeros(shape, dtype=np.int16), np.eye(4))
    image.header.set_zooms(zooms)
    image.header.set_xyzt_units("mm", "sec")
    return gzip.compress(image.to_bytes())


def _write(path: Path, data: bytes) -> list[Path]:
    path.write_bytes(data)
    return [path]


def _rename(old: Path, new: Path) -> list[Path]:
    old.rename(new)
    return [old, new]


def _remove(path: Path) -> list[Path]:
    path.unlink()
    return [path]


T1W = "sub-01/anat/sub-01_T1w.nii.gz"
BOLD = "sub-03/func/sub-03_task-balloonanalogrisktask_run-01_bold.nii.gz"
EVENTS = "sub-03/func/sub-03_task-balloonanalogrisktask_run-01_events.tsv"
CHANGES: dict[str, tuple[Change, int]] = {  # a change, and how many files it makes vxds read
    "edit a file": (lambda r: _write(r / EVENTS, b"onset\tduration\n1\t2\n"), 1),
    "add a file": (lambda r: _write(r / "sub-04/anat/notes.txt", b"new"), 1),
    "remove a file": (lambda r: _remove(r / EVENTS), 0),
    "rename a file": (lambda r: _rename(r / EVENTS, r / EVENTS.replace("run-01", "run-04")), 1),  # by path
    "edit the root sidecar": (
        lambda r: _write(
            r / "task-balloonanalogrisktask_bold.json", b'{"RepetitionTime": 9.5, "TaskName": "x"}'
        ),
        1,
    ),
    "add a sidecar below it": (
        lambda r: _write(
            r / "sub-05/func/sub-05_task-balloonanalogrisktask_bold.json", b'{"RepetitionTime": 1}'
        ),
        1,
    ),
    "make a folder a dataset root": (
        lambda r: _write(r / "sub-06/dataset_description.json", b'{"Name": "x", "BIDSVersion": "1.8.0"}'),
        1,
    ),
    "edit participants.tsv": (
        lambda r: _write(r / "participants.tsv", b"participant_id\tsex\tage\nsub-01\tF\t30\n"),
        1,
    ),
    "add a series member": (
        lambda r: _write(r / "sub-02/dicom/IM0003", dicom_bytes(MR_UID, instance=4, SeriesNumber=2)),
        1,
    ),
    "move a file between series": (
        lambda r: _write(r / "sub-02/dicom/IM0002", dicom_bytes(CT_UID, instance=2, SeriesNumber=3)),
        1,
    ),
    "edit a NIfTI header": (lambda r: _write(r / T1W, _volume((4, 5, 7), (1.0, 1.0, 0.8))), 1),
    "edit a Zarr member": (
        lambda r: _write(next((r / "sub-01/micr").glob("*.zarr")) / ".zattrs", b'{"multiscales": []}'),
        1,
    ),
}


@pytest.mark.parametrize("share", [source.CACHED_SHARE, 0], ids=["caches", "few-files-read-again"])
@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_gives_what_a_scan_without_cache_gives(
    name: str, share: int, tmp_path: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "CACHED_SHARE", share)  # 0: a rebuild never loads the caches
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    before = _scan(root, cache)
    assert before == _scan(root, None)
    change, reads = CHANGES[name]
    _settle(change(root))
    hashed.clear()
    after = _scan(root, cache)
    assert len(hashed) == reads  # only what changed is read again, the rest is the index's
    assert after == _scan(root, None)
    assert after != before
    hashed.clear()
    assert _scan(root, cache) == after  # the index now holds the change
    assert hashed == []


def test_an_edit_above_rebuilds_the_folders_below_it(tmp_path: Path, hashed: list[str]) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    resources = {r.id: r for r in _source(root, cache).resources()}
    bold = resources[BOLD]
    assert bold.attrs["RepetitionTime"] == 2
    _settle(_write(root / "task-balloonanalogrisktask_bold.json", b'{"RepetitionTime": 9.5}'))
    again = {r.id: r for r in _source(root, cache).resources()}
    assert again[BOLD].attrs["RepetitionTime"] == 9.5  # a neighbour's attrs, not its bytes, changed
    assert again[BOLD].hash == bold.hash


def _walked(rel: str, mtime: int = 5) -> WalkedFile:
    return WalkedFile(rel, "/x/" + rel, 3, (3, mtime, 7))


def test_a_folders_context_is_every_json_above_it() -> None:
    files = [_walked("a.json"), _walked("s/b/c.nii"), _walked("s/b/d.txt"), _walked("t/e.nii")]
    by_rel = {g.rel: g for g in groups(files, {}, racy=10)}
    assert set(by_rel) == {"", "s/b", "t"}
    assert by_rel["s/b"].context == by_rel["t"].context == by_rel[""].context != ""
    assert by_rel["s/b"].stamp == "c.nii\t3\t5\t7\nd.txt\t3\t5\t7\n"
    moved = {g.rel: g for g in groups([*files[:3], _walked("t/e.nii"), _walked("t/f.json")], {}, racy=10)}
    assert moved["t"].context != by_rel["t"].context
    assert moved["s/b"].context == by_rel["s/b"].context  # a sidecar beside it does not apply


def test_a_recent_file_or_sidecar_leaves_its_folder_unsettled() -> None:
    found: dict[str, Group] = {
        g.rel: g
        for g in groups([_walked("a.json", mtime=20), _walked("s/c.nii"), _walked("t/d.nii", 20)], {}, 10)
    }
    assert [found[rel].settled for rel in ("", "s", "t")] == [False, False, False]
    settled = {g.rel: g for g in groups([_walked("a.json"), _walked("s/c.nii")], {}, 10)}
    assert all(g.settled and g.kind == FOLDERS for g in settled.values())


def test_a_file_edited_in_place_is_found_and_only_its_folder_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _scan(root, cache)
    target = root / EVENTS
    folder = os.stat(target.parent)
    target.write_bytes(b"onset\tduration\n5\t6\n")  # in place: its folder's time does not change
    when = time.time_ns() - 300 * 10**9
    os.utime(target, ns=(when, when))
    assert os.stat(target.parent).st_mtime_ns == folder.st_mtime_ns
    lstats: list[str] = []
    real = os.lstat

    def counting(path: str, *args: object, **kwargs: object) -> os.stat_result:
        lstats.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(walk.os, "lstat", counting)
    after = _scan(root, cache)
    monkeypatch.undo()
    assert after == _scan(root, None)
    inside = {os.path.dirname(p) for p in lstats if p.startswith(f"{root}/")}  # not realpath's of root
    assert inside == {str(target.parent)}  # the changed folder's files were stat'ed, no other's
