"""vxds/sources/folder/patch.py: after a change, only the stale folders are listed again and
only the groups they can change are built again; the result is exactly what a scan with no
cache gives, and the caches it leaves are those a full walk leaves."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import orjson
import pytest

from tests.sources.folder.test_cache import _plant
from tests.sources.folder.test_index import CHANGES, Change, _remove, _scan, _settle, _tree, _write
from vxds.sources.folder import patch, source
from vxds.sources.folder.cache import TreeCache, cache_folder
from vxds.sources.folder.walk import WalkedFile

from ...dicom_files import MR_UID, dicom_bytes


def _rmtree(path: Path) -> list[Path]:
    shutil.rmtree(path)
    return [path]


def _new_folder(root: Path) -> list[Path]:
    deep = root / "sub-20" / "ses-01" / "anat"
    deep.mkdir(parents=True)
    (deep / "sub-20_ses-01_T1w.nii.gz").write_bytes(b"not a volume")
    (deep / "sub-20_ses-01_T1w.json").write_bytes(b'{"EchoTime": 3}')
    return [*deep.rglob("*"), deep, deep.parent, deep.parent.parent]


def _move_folder(root: Path) -> list[Path]:
    (root / "sub-04").rename(root / "sub-40")
    return [root / "sub-40", *(root / "sub-40").rglob("*")]


FOLDER_CHANGES: dict[str, Change] = {
    "add a folder tree": _new_folder,
    "remove a folder": lambda r: _rmtree(r / "sub-05"),
    "rename a folder": _move_folder,
    "remove a Zarr chunk folder": lambda r: _rmtree(next((r / "sub-01/micr").glob("*.zarr")) / "0"),
    "remove the DICOM folder": lambda r: _rmtree(r / "sub-02/dicom"),
    "add a series member and a sidecar": lambda r: [
        *_write(r / "sub-02/dicom/IM0004", dicom_bytes(MR_UID, instance=5, SeriesNumber=2)),
        *_write(r / "sub-02/sub-02_T1w.json", b'{"EchoTime": 1}'),
    ],
    "remove the root sidecar": lambda r: _remove(r / "task-balloonanalogrisktask_bold.json"),
}
EVERY_CHANGE: dict[str, Change] = {
    **{name: change for name, (change, _) in CHANGES.items()},
    **FOLDER_CHANGES,
}


@pytest.mark.parametrize("name", list(EVERY_CHANGE))
def test_a_change_is_patched_into_what_a_scan_without_cache_gives(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    before = _scan(root, cache)
    _settle(EVERY_CHANGE[name](root))
    after = _patched(root, cache, monkeypatch)  # the change is patched in: no whole walk
    assert after == _scan(root, None)
    assert after != before
    folder = cache_folder(cache, root)
    assert folder is not None
    kept = _state(folder)
    shutil.rmtree(cache)
    assert _scan(root, cache) == after
    assert _state(folder) == kept  # the tree cache a full walk writes


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("the whole tree was walked")


def _patched(root: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    """A scan with the cache that must not walk the whole tree."""
    with monkeypatch.context() as patched:
        patched.setattr(source, "walk", _refuse)
        return _scan(root, cache)


def _state(folder: Path) -> dict[str, object]:
    data: dict[str, object] = orjson.loads((folder / "stats.json").read_bytes())
    data.pop("token")
    return data


def test_a_change_made_just_now_is_listed_again_once_it_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _scan(root, cache)
    target = root / "sub-03/anat/notes.txt"
    target.write_bytes(b"written just now")  # too recent to trust: kept stale in the caches
    first = _patched(root, cache, monkeypatch)
    assert first == _scan(root, None)
    folder = cache_folder(cache, root)
    assert folder is not None
    tree = TreeCache(folder)
    assert tree.root is None
    assert tree.unchanged_listing(str(root)) is None
    assert tree.stale == {"sub-03/anat/"}
    target.write_bytes(b"and again, same size....")  # within the same tick, say
    _settle([target])
    second = _patched(root, cache, monkeypatch)
    assert second == _scan(root, None)
    assert second != first
    tree = TreeCache(folder)
    assert tree.unchanged_listing(str(root)) == tree.root is not None  # settled: known unchanged


def test_only_stale_folders_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _scan(root, cache)
    _settle(_new_folder(root))
    listed: list[str] = []
    real = patch.listing

    def spy(
        rel: str, path: str, tree: TreeCache | None
    ) -> tuple[tuple[list[str], list[str]], tuple[int, int]]:
        listed.append(rel)
        return real(rel, path, tree)

    monkeypatch.setattr(patch, "listing", spy)
    after = _patched(root, cache, monkeypatch)
    assert listed == [""]  # the root changed; the new folders below it are walked whole
    assert after == _scan(root, None)


def test_a_bucket_lost_is_built_again(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _scan(root, cache)
    folder = cache_folder(cache, root)
    assert folder is not None
    for bucket in (folder / "index").iterdir():
        bucket.write_bytes(b"{damaged")
    _settle(_write(root / "sub-03/anat/notes.txt", b"a note"))
    assert _scan(root, cache) == _scan(root, None)  # the whole tree walked, every group built


def test_a_folder_gone_whose_parent_kept_its_time_is_walked_whole(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _scan(root, cache)
    parent = root / "sub-05"
    st = parent.stat()
    shutil.rmtree(parent / "func")
    os.utime(parent, ns=(st.st_atime_ns, st.st_mtime_ns))  # the parent's time put back
    time.sleep(0.01)
    assert _scan(root, cache) == _scan(root, None)


def _plant_outside(tmp_path: Path, cache: Path, root: Path, name: str) -> Path:
    """A file outside the tree, planted in ``stats.json`` as a name of ``sub-03/anat/`` with
    its true stat key, so that no stat finds the folder changed."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the tree's")
    _settle([outside])
    folder = cache_folder(cache, root)
    assert folder is not None
    st = outside.stat()
    _plant(folder, "sub-03/anat/", name, [st.st_size, st.st_mtime_ns, st.st_ino])
    return outside


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the folder source stats or hashes as a file of the tree (``WalkedFile``s)."""
    seen: list[str] = []
    real = source.FolderSource._hash_all

    def spy(self: source.FolderSource, files: list[WalkedFile]) -> object:
        seen.extend(f.path for f in files)
        return real(self, files)

    monkeypatch.setattr(source.FolderSource, "_hash_all", spy)
    return seen


PLANTED = {"dot-dot": "../../../outside.txt", "a path": "x/../../../../outside.txt"}
AFTER = {
    "the index lost": lambda r, folder: shutil.rmtree(folder / "index"),
    "a sidecar above it edited": lambda r, folder: _settle(
        _write(r / "task-balloonanalogrisktask_bold.json", b'{"RepetitionTime": 9.5}')
    ),
}


@pytest.mark.parametrize("after", list(AFTER))
@pytest.mark.parametrize("planted", list(PLANTED))
def test_a_name_planted_in_the_tree_cache_is_never_read(
    planted: str, after: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    _scan(root, cache)
    outside = _plant_outside(tmp_path, cache, root, PLANTED[planted])
    folder = cache_folder(cache, root)
    assert folder is not None
    AFTER[after](root, folder)
    reads = _reads(monkeypatch)
    found = _scan(root, cache)  # sub-03/anat is listed again: no InvalidResource, no outside read
    assert str(outside) not in [os.path.normpath(p) for p in reads]
    assert found == _scan(root, None)
    assert all("outside" not in rel for rel in orjson.loads((folder / "stats.json").read_bytes())["files"])
