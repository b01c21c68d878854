"""Readers fall back to the store: ``vxds materialize`` and ``load_lock(...).open()``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.conftest import vxds
from vxds.api import load_lock
from vxds.errors import SourceError

TWO = "sub-02/anat/sub-02_T2w.nii.gz"
LOCKED = b"\x5c\x01\x00\x00volume two"


def test_an_edited_source_file_is_materialized_byte_exact_from_the_store(
    locked: Path, tmp_path: Path
) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    (locked / "data" / TWO).write_bytes(b"\x5c\x01\x00\x00volume 2!!")  # same size, other bytes
    (locked / "data/sub-03/anat/sub-03_T2w.nii.gz").unlink()
    result = vxds(locked, "materialize", "demo", "-o", str(out), "-m", "files", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert (out / "test" / TWO).read_bytes() == LOCKED
    assert (out / "train/sub-03/anat/sub-03_T2w.nii.gz").read_bytes() == b"\x5c\x01\x00\x00volume three"
    without = vxds(locked, "materialize", "demo", "-o", str(tmp_path / "o2"), "-m", "files")
    assert without.exit_code == 1


def test_from_store_reads_every_resource_from_the_store(locked: Path, tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    digest_dir = store / "blake3"
    for path in digest_dir.rglob("*"):
        if path.is_file():
            path.write_bytes(b"tampered")  # a store is checked as a source is
    result = vxds(
        locked, "materialize", "demo", "-o", str(out), "-m", "files", "--store", str(store), "--from-store"
    )
    assert result.exit_code == 1
    assert "content does not match the locked hash" in result.output or "the lock says" in result.output


def test_load_lock_open_falls_back_to_the_store(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    (locked / "data" / TWO).write_bytes(b"changed")
    with load_lock("demo@1", root=locked, store=str(store)).open(TWO) as fh:
        assert fh.read() == LOCKED
    with pytest.raises(SourceError), load_lock("demo@1", root=locked).open(TWO) as fh:
        fh.read()


def test_a_file_neither_the_source_nor_the_store_has_says_both(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (locked / "data" / TWO).unlink()
    result = vxds(
        locked, "materialize", "demo", "-o", str(tmp_path / "out"), "-m", "files", "--store", str(store)
    )
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if TWO in line)
    assert "is missing from the source" in line
    assert f"; from the store: {TWO}: not in the store {str(store)!r} (blake3/" in line
