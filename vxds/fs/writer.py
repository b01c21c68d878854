"""Binary files written through ``os.write``, whose every ``OSError`` names the file.

Python's own file objects report a failed write (a full disk, a quota) with no file name:
``OSError: [Errno 28] No space left on device``, which tells a user nothing about which disk
is full. ``writer(fd, name)`` is the C ``BufferedWriter`` over a raw file whose one Python
method, called once per full buffer (or once per large write, unbuffered), writes with
``os.write`` and names ``name`` in any failure, the flush at ``close`` included. The buffer
is large (1 MiB by default), so small writes cost what they cost in ``open(path, "wb")``.

``create(path)`` opens a new scratch file that way (vxds' own work files under
``.vxds/tmp/``, which it removes itself); a file a user sees is written with ``atomic_write``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

BUFFER = 1 << 20


class _Raw(io.RawIOBase):
    """An open file descriptor that names ``name`` in the ``OSError`` of a write."""

    def __init__(self, fd: int, name: str) -> None:
        super().__init__()
        self._fd, self.name = fd, name

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return os.write(self._fd, data)
        except OSError as exc:
            exc.filename = self.name
            raise

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def writer(fd: int, name: str, *, buffer_size: int = BUFFER) -> io.BufferedWriter:
    """A buffered binary file over ``fd`` (closed with it); an ``OSError`` names ``name``."""
    return io.BufferedWriter(_Raw(fd, name), buffer_size)


def create(path: Path, *, buffer_size: int = BUFFER) -> io.BufferedWriter:
    """``path`` created (or emptied) for writing, as ``open(path, "wb")``, but every
    ``OSError`` of its writes, its flushes and its close names ``path``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    return writer(os.open(path, flags, 0o666), str(path), buffer_size=buffer_size)
