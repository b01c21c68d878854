"""Copying bytes between open files: in the kernel where it can, and with the disk write
started as the copy goes, so that the fsync at the end has little left to wait for."""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable

from vxds.fs import start_writeback

COPY_CHUNK = 64 << 20
# A kernel copy refused before any byte moved (another file system, an old kernel): the
# next way is tried (ENOTSOCK: a sendfile that sends to sockets only, as macOS').
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTSOCK}


def copy_fd(src: int, dst: int) -> int:
    """Copy what is left of the open file ``src`` to ``dst`` (copy_file_range, else sendfile,
    else reads and writes), the disk write of each 64 MiB started as it goes; returns the
    number of bytes copied. The caller still fsyncs ``dst``, and compares the count with the
    source's size (a kernel copy may end early on some file systems).

    The writes are started from another thread: starting them costs the kernel as much CPU
    as a third of the copy, which on this thread would come before the next step's copy."""
    ways = [way for name, way in _WAYS if hasattr(os, name)] + [_read_write]
    copied = 0
    with _Writeback(dst) as writeback:
        while True:
            try:
                count = ways[0](src, dst)
            except OSError as exc:
                if copied or exc.errno not in _NO_KERNEL_COPY or len(ways) == 1:
                    raise
                ways.pop(0)
                continue
            if not count:
                return copied
            writeback.start(copied, count)
            copied += count


class _Writeback:
    """A thread that starts the disk write of each range of ``fd`` it is given, in order; on
    leaving the block it has started every one (so none is asked of a closed file)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._ranges: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self, offset: int, length: int) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vxds-writeback", daemon=True)
            self._thread.start()
        self._ranges.put((offset, length))

    def _run(self) -> None:
        while (item := self._ranges.get()) is not None:
            start_writeback(self._fd, *item)

    def __enter__(self) -> _Writeback:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._ranges.put(None)
            self._thread.join()


def _copy_file_range(src: int, dst: int) -> int:
    return os.copy_file_range(src, dst, COPY_CHUNK)


def _sendfile(src: int, dst: int) -> int:
    return os.sendfile(dst, src, None, COPY_CHUNK)


def _read_write(src: int, dst: int) -> int:
    data = os.read(src, COPY_CHUNK)
    write_all(dst, data)
    return len(data)


_WAYS: list[tuple[str, Callable[[int, int], int]]] = [
    ("copy_file_range", _copy_file_range),
    ("sendfile", _sendfile),
]


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte of ``data`` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
