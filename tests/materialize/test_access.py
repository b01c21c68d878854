"""``SourceAccess`` in the link modes with a store: an edited source file is never linked.

With ``--store``, a resource whose source file no longer has the locked bytes is read from
the store instead; in ``--mode hardlink`` and ``symlink`` the placed file is then a copy of
the store's object (never a link to it: an edit in OUT would change the store), never the
edited source file. With ``--from-store`` every resource is the store's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vxds.cli.main import cli

TWO = "sub-02/anat/sub-02_T2w.nii.gz"
LOCKED = b"\x5c\x01\x00\x00volume two"
EDITED = b"\x5c\x01\x00\x00volume 2!!"  # the same size, other bytes


def vxds(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--root", str(root)], catch_exceptions=False)


@pytest.fixture
def pushed(project: Path, tmp_path: Path) -> Path:
    """The demo project locked, its bytes pushed to ``tmp_path/store``."""
    assert vxds(project, "lock", "--all").exit_code == 0
    result = vxds(project, "push", "--all", "--store", str(tmp_path / "store"))
    assert result.exit_code == 0, result.output
    return project


def placed(out: Path, rel: str) -> os.stat_result:
    return os.stat(out / "test" / rel)


def object_inodes(store: Path) -> set[int]:
    return {p.stat().st_ino for p in store.rglob("*") if p.is_file()}


def assert_not_linked_to(store: Path, out: Path, rel: str) -> None:
    """OUT's file is a file of its own: not a symlink, not one of the store's inodes."""
    assert not (out / "test" / rel).is_symlink()
    assert placed(out, rel).st_ino not in object_inodes(store)


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_an_edited_source_file_is_linked_from_the_store(pushed: Path, tmp_path: Path, mode: str) -> None:
    source_file = pushed / "data" / TWO
    source_file.write_bytes(EDITED)
    out = tmp_path / "out"
    args = ("materialize", "demo", "-o", str(out), "-m", "files", "--mode", mode)
    result = vxds(pushed, *args, "--store", str(tmp_path / "store"))
    assert result.exit_code == 0, result.output
    assert (out / "test" / TWO).read_bytes() == LOCKED
    assert placed(out, TWO).st_ino != source_file.stat().st_ino  # not the edited file
    assert_not_linked_to(tmp_path / "store", out, TWO)
    assert "read from the store, whose objects are never linked" in result.output
    assert source_file.read_bytes() == EDITED  # and the source is left as the user made it
    assert (out / "train/sub-03/anat/sub-03_T2w.nii.gz").read_bytes() == b"\x5c\x01\x00\x00volume three"


def test_without_the_store_the_edited_file_is_refused_not_linked(pushed: Path, tmp_path: Path) -> None:
    (pushed / "data" / TWO).write_bytes(EDITED)
    out = tmp_path / "out"
    result = vxds(pushed, "materialize", "demo", "-o", str(out), "-m", "files", "--mode", "hardlink")
    assert result.exit_code == 1
    assert not os.path.lexists(out / "test" / TWO)


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_from_store_links_the_stores_copy_not_the_source(pushed: Path, tmp_path: Path, mode: str) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    args = ("materialize", "demo", "-o", str(out), "-m", "files", "--mode", mode, "--from-store")
    result = vxds(pushed, *args, "--store", str(store))
    assert result.exit_code == 0, result.output
    source_inode = (pushed / "data" / TWO).stat().st_ino
    assert placed(out, TWO).st_ino != source_inode
    assert (out / "test" / TWO).read_bytes() == LOCKED
    assert_not_linked_to(store, out, TWO)


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_an_edit_in_out_leaves_the_stores_object_as_it_was(pushed: Path, tmp_path: Path, mode: str) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    args = ("materialize", "demo", "-o", str(out), "-m", "files", "--mode", mode, "--from-store")
    assert vxds(pushed, *args, "--store", str(store)).exit_code == 0
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    with open(out / "test" / TWO, "r+b") as fh:  # an edit in place, as some editors make
        fh.write(b"EDIT")
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
    result = vxds(pushed, "verify", "--store", str(store), "--data")
    assert result.exit_code == 0, result.output
