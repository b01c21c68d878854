"""vxds/sources/folder/source.py: the folders on a resource's way are resolved one at a time
from their parent's real path, and a linked folder is still followed to where it leads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vxds.errors import SourceError
from vxds.resource import Resource
from vxds.sources.base import SourceContext
from vxds.sources.folder.source import FolderSource


@pytest.fixture
def source(tmp_path: Path) -> FolderSource:
    root = tmp_path / "data"
    (root / "sub-01/anat").mkdir(parents=True)
    (root / "sub-01/anat/a.nii").write_bytes(b"volume")
    (tmp_path / "elsewhere/anat").mkdir(parents=True)
    (tmp_path / "elsewhere/anat/b.nii").write_bytes(b"not yours")
    (root / "sub-02").symlink_to(tmp_path / "elsewhere")  # a folder leading out of the tree
    (root / "sub-03").symlink_to(root / "sub-01")  # a folder leading inside it
    return FolderSource(str(root), SourceContext(base=tmp_path, cache_dir=None))


def _file(rid: str) -> Resource:
    return Resource(id=rid, version=1, uri=rid)


def test_a_folder_linked_out_is_refused_after_its_siblings_were_resolved(source: FolderSource) -> None:
    path = source.local_path(_file("sub-01/anat/a.nii"))  # the root's real path is now known
    assert path == os.path.realpath(source.root) + "/sub-01/anat/a.nii"
    with pytest.raises(SourceError, match="points outside the source folder"):
        source.local_path(_file("sub-02/anat/b.nii"))
    assert source.local_path(_file("sub-03/anat/a.nii")).endswith("/sub-03/anat/a.nii")


def test_each_folder_is_resolved_as_realpath_resolves_it(source: FolderSource) -> None:
    root = os.path.realpath(source.root)
    source.local_path(_file("sub-01/anat/a.nii"))
    for folder in (f"{root}/sub-01/anat", f"{root}/sub-02/anat", f"{root}/sub-03/anat", f"{root}/gone/x"):
        assert source._real_folder(folder) == os.path.realpath(folder)
