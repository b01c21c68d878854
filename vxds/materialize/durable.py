"""vxds' own files in OUT: opened without following symlinks, and the errors of writing them.

The receipt, the journal, the lock file and the temporary folder are vxds' own names in
OUT. A symlink at one of them was planted (vxds never makes one), so it is refused rather
than followed. The receipt is written with ``vxds.fs.atomic_write`` (a unique temporary
name, fsynced, renamed, its folder fsynced), so a crash leaves the old receipt or the new
one; ``write_error`` says what failed, and a full disk is a ``DiskFull``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from vxds.errors import VxdsError

# Out of space, or out of quota: the run cannot go on, whichever resource hit it first.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class UnsafeOutput(VxdsError):
    """One of vxds' own names in OUT is a symlink (or not what vxds would put there)."""


class DiskFull(VxdsError):
    """The device OUT is on is full: the run stops (what was placed is kept and journalled)."""


def refuse_symlink(path: Path | str) -> UnsafeOutput:
    return UnsafeOutput(f"{path} is a symlink; vxds never follows one of its own files")


def write_error(path: Path | str, exc: OSError, resource: str | None = None) -> VxdsError:
    """The error for a write to ``path`` that failed: a full disk names what was written."""
    what = f" (resource {resource})" if resource is not None else ""
    if exc.errno in DISK_FULL:
        return DiskFull(
            f"no space left on the device writing {path}{what};"
            " free some space and run again: what was placed is kept"
        )
    return VxdsError(f"cannot write {path}{what}: {exc.strerror or exc}")


def check_not_symlink(path: Path) -> None:
    """Refuse ``path`` if it is a symlink (a missing path is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise refuse_symlink(path)


def open_own(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of one of vxds' own files, never through a symlink at its name."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refuse_symlink(path) from None
        raise


def read_own(path: Path) -> bytes:
    """The bytes of one of vxds' own files (``FileNotFoundError`` when there is none)."""
    fd = open_own(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
