"""``vxds verify --store`` and ``vxds gc`` on a local folder store, through the command line."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import commit_all, git
from tests.store.conftest import objects, vxds
from vxds.hashing import digest_bytes

TWO = "data/sub-02/anat/sub-02_T2w.nii.gz"


def _hex(data: bytes) -> str:
    return digest_bytes(data).removeprefix("blake3:")


def test_verify_finds_a_deleted_store_object_and_names_it(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    clean = vxds(locked, "verify", "--no-exec", "--store", str(store))
    assert clean.exit_code == 0, clean.output
    digest = _hex((locked / TWO).read_bytes())
    (store / "blake3" / digest[:2] / digest[2:]).unlink()
    result = vxds(locked, "verify", "--no-exec", "--store", str(store))
    assert result.exit_code == 1
    assert (
        f"VX801 locks/demo/1/resources.test.jsonl:1: sub-02/anat/sub-02_T2w.nii.gz: not in the store"
        f" {str(store)!r} (blake3/{digest[:2]}/{digest[2:]}); run 'vxds push demo@1'"
    ) in result.output


def test_verify_with_base_checks_only_changed_locks(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "empty"
    store.mkdir()
    result = vxds(locked, "verify", "--no-exec", "--store", str(store), "--base", "main")
    assert result.exit_code == 0, result.output
    assert "VX801" in vxds(locked, "verify", "--no-exec", "--store", str(store)).output


def test_gc_keeps_what_any_branch_needs_and_removes_the_rest(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    # A branch whose lock has an edited file: pushed, then the branch is the only holder.
    git(locked, "checkout", "-q", "-b", "edit")
    (locked / TWO).write_bytes(b"\x5c\x01\x00\x00volume two, edited")
    assert vxds(locked, "lock", "--all").exit_code == 0
    commit_all(locked, "edit two")
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    assert len(objects(store)) == 4
    git(locked, "checkout", "-q", "main")
    stray = _hex(b"no lock has me")
    (store / "blake3" / stray[:2]).mkdir(exist_ok=True)
    (store / "blake3" / stray[:2] / stray[2:]).write_bytes(b"no lock has me")
    dry = vxds(locked, "gc", "--store", str(store))
    assert dry.exit_code == 0
    assert dry.output.splitlines() == [
        f"would remove blake3/{stray[:2]}/{stray[2:]} (14 bytes)",
        f"{store}: would remove 1 objects (14 bytes), keep 4; run with --delete to remove them",
    ]
    assert len(objects(store)) == 5
    assert vxds(locked, "gc", "--store", str(store), "--delete").exit_code == 0
    assert len(objects(store)) == 4
    # Only main's locks named: the edited file's object goes too.
    only_main = vxds(locked, "gc", "--store", str(store), "--rev", "main", "--delete")
    assert "removed 1 objects" in only_main.output


def test_gc_removes_what_a_write_killed_a_day_ago_left(locked: Path, tmp_path: Path) -> None:
    import os

    store = tmp_path / "store"
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0
    folder = next(p for p in (store / "blake3").iterdir() if p.is_dir())
    old, fresh = folder / ".cdef.123-abcd.tmp", folder / ".cdef.124-abcd.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (1, 1))
    dry = vxds(locked, "gc", "--store", str(store))
    assert "would remove 0 objects (0 bytes) and 1 files of killed writes" in dry.output
    assert old.exists()
    assert vxds(locked, "gc", "--store", str(store), "--delete").exit_code == 0
    assert not old.exists()
    assert fresh.exists()  # perhaps a push under way
    assert len(objects(store)) == 3
