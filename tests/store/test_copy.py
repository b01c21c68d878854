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
