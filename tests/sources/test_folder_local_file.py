"""``FolderSource.local_file``: the path materialize links to and its stat, in one ``lstat``."""

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
    (root / "sub-01").mkdir(parents=True)
    (root / "sub-01" / "a.nii").write_bytes(b"volume")
    (root / "sub-01" / "inside.nii").symlink_to(root / "sub-01" / "a.nii")
    (tmp_path / "secret.nii").write_bytes(b"not yours")
    (root / "sub-01" / "out.nii").symlink_to(tmp_path / "secret.nii")
    return FolderSource(str(root), SourceContext(base=tmp_path, cache_dir=None))


def _file(rid: str, uri: str | None = None) -> Resource:
    return Resource(id=rid, version=1, uri=uri)


def test_a_plain_file_is_its_lstat(source: FolderSource) -> None:
    path, st = source.local_file(_file("sub-01/a.nii"))
    assert path == source.local_path(_file("sub-01/a.nii"))
    assert (st.st_size, st.st_ino) == (6, os.lstat(path).st_ino)


def test_a_link_inside_the_tree_is_the_stat_of_its_target(source: FolderSource) -> None:
    path, st = source.local_file(_file("sub-01/inside.nii"))
    assert path.endswith("/sub-01/inside.nii")
    assert st.st_ino == os.stat(source.root / "sub-01/a.nii").st_ino


def test_a_link_or_uri_leading_out_is_refused_and_a_missing_file_is_not_found(source: FolderSource) -> None:
    with pytest.raises(SourceError, match="outside the source folder; not read"):
        source.local_file(_file("sub-01/out.nii"))
    with pytest.raises(SourceError, match="points outside the source folder"):
        source.local_file(_file("x", uri="../secret.nii"))
    with pytest.raises(FileNotFoundError):
        source.local_file(_file("sub-01/gone.nii"))
