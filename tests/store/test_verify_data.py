"""``vxds verify --data`` with a store: what the source lost, read from the store."""

from __future__ import annotations

from pathlib import Path

from tests.store.conftest import vxds
from vxds.hashing import digest_bytes

TWO = "data/sub-02/anat/sub-02_T2w.nii.gz"


def test_a_lost_file_the_store_has_is_a_warning(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    (locked / TWO).write_bytes(b"edited")
    result = vxds(locked, "verify", "--no-exec", "--data", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert (
        "warning VX803 locks/demo/1/resources.test.jsonl:1: sub-02/anat/sub-02_T2w.nii.gz:"
        " changed in the source (6 bytes, the lock says 14);"
        f" the locked bytes are in the store {str(store)!r}"
    ) in result.output
    assert vxds(locked, "verify", "--no-exec", "--data").exit_code == 1


def test_a_lost_file_the_store_lacks_stays_an_error(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (locked / TWO).unlink()
    result = vxds(locked, "verify", "--no-exec", "--data", "--store", str(store))
    assert result.exit_code == 1
    assert "VX501" in result.output
    assert "sub-02/anat/sub-02_T2w.nii.gz: missing from the source; not in the store" in result.output


def test_from_store_rehashes_the_store_copies(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    (locked / TWO).write_bytes(b"edited")  # the source is not read
    clean = vxds(locked, "verify", "--no-exec", "--data", "--from-store", "--store", str(store))
    assert clean.exit_code == 0, clean.output
    digest = digest_bytes(b"\x5c\x01\x00\x00volume one").removeprefix("blake3:")
    (store / "blake3" / digest[:2] / digest[2:]).write_bytes(b"rotten")
    result = vxds(locked, "verify", "--no-exec", "--data", "--from-store", "--store", str(store))
    assert result.exit_code == 1
    assert (
        f"VX804 locks/demo/1/resources.train.jsonl:1: sub-01/anat/sub-01_T2w.nii.gz: the store's copy"
        f" (blake3/{digest[:2]}/{digest[2:]}) does not match the lock"
    ) in result.output


def test_from_store_goes_with_data(locked: Path) -> None:
    result = vxds(locked, "verify", "--from-store")
    assert result.exit_code == 2
    assert "--from-store goes with --data" in result.output
