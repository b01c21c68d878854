"""vxds/hashing.py: large files hashed through a memory map in a child process, and read
here instead whenever that child gives no digest (a file truncated while mapped kills it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vxds import filehash
from vxds.hashing import digest_bytes, hash_file_key

SIZE = 3 << 20


@pytest.fixture
def large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """A file over the (lowered) size from which the child maps it."""
    monkeypatch.setattr(filehash, "MAP_IN_CHILD", 2 << 20)
    data = os.urandom(SIZE)
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    old = os.stat(path).st_mtime_ns - 60 * 10**9  # not racy: one read is enough
    os.utime(path, ns=(old, old))
    return path, data


def test_the_child_maps_the_open_file_and_gives_blake3(large: tuple[Path, bytes]) -> None:
    path, data = large
    fd = os.open(path, os.O_RDONLY)
    try:
        assert filehash._mapped_digest(fd) == digest_bytes(data)
    finally:
        os.close(fd)
    assert hash_file_key(path)[0] == digest_bytes(data)


def test_a_child_killed_by_sigbus_is_answered_by_reading_here(
    large: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = large
    monkeypatch.setattr(filehash, "_MAP_CHILD", "import os, signal\nos.kill(os.getpid(), signal.SIGBUS)\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert filehash._mapped_digest(fd) is None
    finally:
        os.close(fd)
    reads: list[int] = []
    real = filehash.blake3

    class Counting:
        """blake3, counting the bytes this process feeds it."""

        AUTO = real.AUTO

        def __init__(self, data: bytes = b"", **options: int) -> None:
            self.hasher = real(data, **options)
            reads.append(len(data))

        def update(self, data: bytes | memoryview) -> None:
            reads.append(len(data))
            self.hasher.update(data)

        def hexdigest(self) -> str:
            return str(self.hasher.hexdigest())

    expected = digest_bytes(data)
    monkeypatch.setattr(filehash, "blake3", Counting)
    assert hash_file_key(path) == (
        expected,
        (SIZE, os.stat(path).st_mtime_ns, os.stat(path).st_ino),
    )
    # every byte read by this process instead: once, or twice when the file's change time
    # (set by utime just now) is as recent as the read (filehash.RACY_NS)
    assert sum(reads) in (SIZE, 2 * SIZE)


def test_a_child_that_prints_no_digest_is_not_believed(
    large: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = large
    monkeypatch.setattr(filehash, "_MAP_CHILD", "import sys\nsys.stdout.write('z' * 64)\n")
    assert hash_file_key(path)[0] == digest_bytes(data)
