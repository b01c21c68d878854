"""Claims: paths claimed once, the folder tree made once, parents first, nothing through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vxds.errors import VxdsError
from vxds.materialize.claims import Claims


def _claims(tmp_path: Path) -> tuple[Claims, Path]:
    out = tmp_path / "out"
    out.mkdir()
    return Claims(out), out


def test_make_folders_makes_each_folder_once_parents_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims, out = _claims(tmp_path)
    made: list[str] = []
    real = os.mkdir

    def spy(path: str, *args: object, **kwargs: object) -> None:
        made.append(os.path.relpath(path, out))
        real(path)

    monkeypatch.setattr(os, "mkdir", spy)
    rels = ["all/b/x/2.nii", "all/a/1.nii", "all/b/x/1.nii", "all/a-b/3.nii", "top.txt"]
    claims.make_folders(rels)
    assert made == ["all", "all/a", "all/a-b", "all/b", "all/b/x"]
    made.clear()
    assert [claims.parent(rel) for rel in rels] == [f"{out}/{rel}" for rel in rels]
    assert made == []  # parent() trusts the folders made above: no mkdir, no probing


def test_make_folders_leaves_out_a_symlinked_folder_and_parent_refuses_it(tmp_path: Path) -> None:
    claims, out = _claims(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "all").mkdir()
    (out / "all" / "sub-1").symlink_to(elsewhere)
    claims.make_folders(["all/sub-1/anat/a.nii", "all/sub-2/anat/b.nii"])
    assert (out / "all/sub-2/anat").is_dir()
    assert list(elsewhere.iterdir()) == []  # nothing made through the link
    with pytest.raises(VxdsError, match="OUT/all/sub-1 is a symlink; refusing to write through it"):
        claims.parent("all/sub-1/anat/a.nii")


def test_make_folders_leaves_out_a_file_in_the_way(tmp_path: Path) -> None:
    claims, out = _claims(tmp_path)
    (out / "all").write_bytes(b"a file")
    claims.make_folders(["all/sub-1/a.nii"])
    assert (out / "all").read_bytes() == b"a file"
    with pytest.raises(VxdsError, match="OUT/all is not a folder"):
        claims.parent("all/sub-1/a.nii")


def test_a_file_and_a_folder_at_one_path_clash_either_way(tmp_path: Path) -> None:
    claims, _ = _claims(tmp_path)
    assert claims.claim("all/a/b/c.nii", "r1", "files") is None
    assert claims.claim("all/a/b/d.nii", "r2", "files") is None
    assert claims.claim("all/a", "r3", "files") == (
        "files: r3 and files placed inside it would both be placed at all/a"
    )
    assert claims.claim("all/x", "r4", "files") is None
    assert claims.claim("all/x/y/z.nii", "r5", "files") == (
        "files: r5 and files: r4 would both be placed at all/x/y/z.nii"
    )
    assert claims.claim("all/a/b/c.nii", "r6", "files") == (
        "files: r6 and files: r1 would both be placed at all/a/b/c.nii"
    )
    assert claims.claim("../up", "r7", "files") is not None
    assert claims.claim(".vxds-receipt.json", None, "files") is not None
