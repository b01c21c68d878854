"""``vxds push`` into a local folder store, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.store.conftest import objects, vxds
from vxds.hashing import digest_bytes

VOLUMES = [b"\x5c\x01\x00\x00volume one", b"\x5c\x01\x00\x00volume two", b"\x5c\x01\x00\x00volume three"]


def test_push_writes_one_object_per_digest_then_nothing(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = vxds(locked, "push", "--all", "--store", str(store))
    assert first.exit_code == 0, first.output
    assert "3 uploaded" in first.output
    assert ", 0 already in the store" in first.output
    wanted = sorted(digest_bytes(data).removeprefix("blake3:") for data in VOLUMES)
    assert objects(store) == [f"{d[:2]}/{d[2:]}" for d in wanted]
    for data in VOLUMES:
        digest = digest_bytes(data).removeprefix("blake3:")
        assert (store / "blake3" / digest[:2] / digest[2:]).read_bytes() == data
    again = vxds(locked, "push", "--all", "--store", str(store))
    assert again.exit_code == 0
    assert again.output.strip() == f"{store}: 0 uploaded (0 bytes), 3 already in the store"


def test_a_changed_source_file_is_reported_and_not_pushed(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (locked / "data/sub-02/anat/sub-02_T2w.nii.gz").write_bytes(b"edited")
    result = vxds(locked, "push", "demo", "--store", str(store))
    assert result.exit_code == 1
    assert (
        "error: demo@1: sub-02/anat/sub-02_T2w.nii.gz: read 6 bytes, the lock says 14; not pushed"
        in result.output
    )
    assert "2 uploaded" in result.output
    assert len(objects(store)) == 2
    assert not [p for p in store.rglob("*") if p.name.startswith(".")]


def test_the_store_comes_from_the_configuration(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "configured"
    pyproject = locked / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.vxds.store]\nurl = "{store.as_posix()}"\n')
    result = vxds(locked, "push", "--all")
    assert result.exit_code == 0, result.output
    assert len(objects(store)) == 3


def test_without_a_store_push_is_a_usage_error(locked: Path) -> None:
    result = vxds(locked, "push", "--all")
    assert result.exit_code == 2
    assert "no store: pass --store URL or set url in [tool.vxds.store]" in result.output


def test_push_needs_names_or_all(locked: Path, tmp_path: Path) -> None:
    result = vxds(locked, "push", "--store", str(tmp_path / "s"))
    assert result.exit_code == 2
    assert "give NAME[@VERSION]... or --all" in result.output


def test_push_reads_the_locks_of_a_revision(locked: Path, tmp_path: Path) -> None:
    import shutil

    shutil.rmtree(locked / "locks")  # only Git has the lock now
    store = tmp_path / "store"
    result = vxds(locked, "push", "--all", "--rev", "main", "--store", str(store), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "store": str(store),
        "uploaded": 3,
        "present": 0,
        "bytes": sum(len(v) for v in VOLUMES),
        "failures": [],
    }
    assert vxds(locked, "push", "--all", "--store", str(store)).exit_code == 0  # no lock: nothing to do


def test_importing_push_loads_no_yaml_until_a_manifest_is_read(locked: Path) -> None:
    """``vxds.store.push`` (and ``vxds.locks.refs`` below it) import the manifest module,
    and with it PyYAML (80-90 ms) for a manifest not read before, only when a manifest is
    read: here, by ``worktree_side`` (the lock read it before, so YAML is not needed)."""
    import subprocess
    import sys

    script = """\
import sys
import vxds.store.push
before = sorted(m for m in sys.modules if m == "yaml" or m.startswith(("yaml.", "vxds.project.manifest")))
from vxds.locks.refs import worktree_side
from vxds.project.config import load_config
worktree_side(load_config(), "working tree")
print(before, "vxds.project.manifest" in sys.modules, "yaml" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=locked, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == "[] True False\n", done.stderr
