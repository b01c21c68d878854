"""``vxds.store.copy``: kernel copies between open files, the disk write started as they go."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import vxds.store.copy
from vxds.store.copy import copy_fd


def _copy(src: Path, dst: Path) -> int:
    source = os.open(src, os.O_RDONLY)
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        return copy_fd(source, out)
    finally:
        os.close(source)
        os.close(out)


@pytest.mark.parametrize("size", [0, 1, 1000, 2500])
def test_every_byte_is_copied_chunk_by_chunk_with_its_write_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(vxds.store.copy, "COPY_CHUNK", 1000)
    monkeypatch.setattr(vxds.store.copy, "start_writeback", lambda fd, at, count: started.append((at, count)))
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    assert _copy(tmp_path / "src", tmp_path / "dst") == size
    assert (tmp_path / "dst").read_bytes() == data
    assert started == [(at, min(1000, size - at)) for at in range(0, size, 1000)]


def test_a_kernel_copy_refused_before_any_byte_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(src: int, dst: int) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(vxds.store.copy, "_WAYS", [("getpid", refused), ("getpid", refused)])
    data = os.urandom(3000)
    (tmp_path / "src").write_bytes(data)
    assert _copy(tmp_path / "src", tmp_path / "dst") == 3000
    assert (tmp_path / "dst").read_bytes() == data


def test_a_kernel_copy_failing_after_bytes_moved_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def once(src: int, dst: int) -> int:
        if calls:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        calls.append(1)
        return (
            os.copy_file_range(src, dst, 10) if hasattr(os, "copy_file_range") else os.write(dst, b"x" * 10)
        )

    monkeypatch.setattr(vxds.store.copy, "_WAYS", [("getpid", once)])
    (tmp_path / "src").write_bytes(os.urandom(3000))
    with pytest.raises(OSError, match="Invalid argument"):
        _copy(tmp_path / "src", tmp_path / "dst")


def test_the_writes_are_started_on_another_thread_that_never_holds_the_copy_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each range's write is started off the copying thread: a start that waits until the
    copy has read to the end of the source cannot hold the copy up, and every start is
    made, on a thread that is gone, by the time copy_fd returns."""
    import threading

    copied_all = threading.Event()
    started: list[tuple[int, int, bool, bool]] = []  # (offset, length, other thread, copy done)
    copier = threading.get_ident()
    real = vxds.store.copy._WAYS[0][1] if hasattr(os, "copy_file_range") else vxds.store.copy._read_write

    def way(src: int, dst: int) -> int:
        count = real(src, dst)
        if not count:
            copied_all.set()
        return count

    def slow_start(fd: int, at: int, count: int) -> None:
        done = copied_all.wait(timeout=5)
        started.append((at, count, threading.get_ident() != copier, done))

    monkeypatch.setattr(vxds.store.copy, "COPY_CHUNK", 1000)
    monkeypatch.setattr(vxds.store.copy, "_WAYS", [("getpid", way)])
    monkeypatch.setattr(vxds.store.copy, "start_writeback", slow_start)
    data = os.urandom(3500)
    (tmp_path / "src").write_bytes(data)
    assert _copy(tmp_path / "src", tmp_path / "dst") == 3500
    assert (tmp_path / "dst").read_bytes() == data
    assert started == [(at, min(1000, 3500 - at), True, True) for at in range(0, 3500, 1000)]
    assert not [t for t in threading.enumerate() if t.name == "vxds-writeback"]


def test_a_copy_that_fails_still_waits_for_the_writes_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    started: list[int] = []

    def failing(src: int, dst: int) -> int:
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        calls.append(1)
        return os.write(dst, os.read(src, 1000))

    def slow_start(fd: int, at: int, count: int) -> None:
        time.sleep(0.2)  # still running when the copy fails, unless the failure waits for it
        started.append(at)

    calls: list[int] = []
    monkeypatch.setattr(vxds.store.copy, "_WAYS", [("getpid", failing)])
    monkeypatch.setattr(vxds.store.copy, "start_writeback", slow_start)
    (tmp_path / "src").write_bytes(os.urandom(3000))
    with pytest.raises(OSError, match="Input/output error"):
        _copy(tmp_path / "src", tmp_path / "dst")
    assert started == [0, 1000]  # both made before the file was closed
    assert not [t for t in threading.enumerate() if t.name == "vxds-writeback"]
