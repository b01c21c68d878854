"""vxds/recipes/audit.py: what a recording sees of the code run inside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vxds.recipes import audit


def test_reads_are_recorded_and_writes_are_not(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    with audit.record() as reads:
        (tmp_path / "in.txt").read_text()
        (tmp_path / "out.txt").write_text("y")  # write-only: cannot change what was computed
        os.close(os.open(tmp_path / "raw.txt", os.O_WRONLY | os.O_CREAT))
        with open(tmp_path / "both.txt", "w+"):
            pass
        os.listdir(tmp_path / "folder")
        list(os.scandir(tmp_path))
    assert reads.opened == {str(tmp_path / "in.txt"), str(tmp_path / "both.txt")}
    assert reads.listed == {str(tmp_path / "folder"), str(tmp_path)}
    assert reads.unrepeatable is None


def test_a_missing_file_is_recorded_too(tmp_path: Path) -> None:
    with audit.record() as reads, pytest.raises(FileNotFoundError):
        (tmp_path / "absent.txt").read_text()
    assert reads.opened == {str(tmp_path / "absent.txt")}


def test_imports_are_recorded_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "audit_probe_module.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with audit.record() as reads:
            __import__("audit_probe_module")  # an import statement (importlib.import_module is not audited)
    finally:
        sys.modules.pop("audit_probe_module", None)
    assert "audit_probe_module" in reads.imported
    assert str(tmp_path / "audit_probe_module.py") in reads.opened


def test_the_first_unrepeatable_event_is_kept() -> None:
    with audit.record() as reads:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        socket.socket().close()
    assert reads.unrepeatable == "subprocess.Popen"
    with audit.record() as again:
        socket.socket().close()
    assert again.unrepeatable is not None
    assert again.unrepeatable.startswith("socket.")


def test_nothing_is_recorded_outside_a_recording(tmp_path: Path) -> None:
    with audit.record() as reads:
        pass
    (tmp_path / "after.txt").write_text("x")
    (tmp_path / "after.txt").read_text()
    assert (reads.opened, reads.listed, reads.imported) == (set(), set(), set())


def test_a_nested_recording_sees_only_its_own_events(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with audit.record() as outer:
        (tmp_path / "a").read_text()
        with audit.record() as inner:
            (tmp_path / "b").read_text()
    assert inner.opened == {str(tmp_path / "b")}
    assert outer.opened == {str(tmp_path / "a")}


def _big_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file large enough (for this test) to be hashed by vxds' memory-mapping child."""
    from vxds import filehash

    monkeypatch.setattr(filehash, "MAP_IN_CHILD", 2 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    return big


def test_vxds_own_hashing_child_is_a_read_not_a_subprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds import filehash, hashing

    big = _big_file(tmp_path, monkeypatch)
    children: list[str | None] = []
    mapped = filehash._mapped_digest
    monkeypatch.setattr(filehash, "_mapper", lambda fd: children.append(mapped(fd)) or children[-1])
    with audit.record() as reads:
        digest = hashing.hash_file(big)
    assert set(children) == {digest}  # the child ran (twice: a file this new is read twice)
    assert reads.unrepeatable is None
    assert str(big) in reads.opened


def test_the_recipes_own_children_and_sockets_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds import filehash, hashing

    big = _big_file(tmp_path, monkeypatch)
    with audit.record() as reads:
        hashing.hash_file(big)
        socket.socket().close()
    assert reads.unrepeatable is not None
    assert reads.unrepeatable.startswith("socket.")
    lookalike = [sys.executable, "-c", filehash._MAP_CHILD, "0", "more"]  # not the hasher's argv
    for argv in ([sys.executable, "-c", "pass"], lookalike):
        with audit.record() as reads:
            hashing.hash_file(big)
            subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True)
        assert reads.unrepeatable == "subprocess.Popen"
