"""Paths inside OUT that come from untrusted records (a receipt, a journal, a listing).

``receipt.path_problem`` holds such a path to the rules of a resource id (relative, no
``..``, ``.`` or empty segments, no backslash, control character or drive letter) and keeps
it off vxds' own names. ``parent_of`` then walks to the path's folder one ``openat`` at a time with
``O_NOFOLLOW``, so a folder on the way that is a symlink (``OUT/train/basel -> /elsewhere``)
is never passed through, even if it is swapped in while vxds walks. POSIX only, as vxds is.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vxds.locks.verified_read import IntegrityError
from vxds.materialize.receipt import path_problem
from vxds.resource import Resource

# getattr: importable where these flags do not exist (not POSIX), though the walk needs them.
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


class SymlinkOnTheWay(OSError):
    """A folder on the way to a path inside OUT is a symlink; ``folder`` is its OUT path."""

    def __init__(self, folder: str) -> None:
        super().__init__(errno.ELOOP, f"{folder} is a symlink")
        self.folder = folder


def member_problem(name: object) -> str | None:
    """Why ``name`` is not a file name inside a DICOM series' folder, or None."""
    problem = path_problem(name)
    if problem is None and "/" in str(name):
        return "a member of a series is a file name, not a path"
    return problem


def check_members(resource: Resource, members: list[tuple[str, str]]) -> None:
    """Every member of a series is a plain file name, once: placed only inside its folder."""
    seen: set[str] = set()
    nested = resource.type == "Zarr"  # members are paths inside the folder, each checked as an id
    for name, _ in members:
        problem = (path_problem(name) if nested else member_problem(name)) or (
            "listed twice" if name in seen else None
        )
        if problem is not None:
            raise IntegrityError(f"{resource.id}: the series lists {name!r}, not a file of it ({problem})")
        seen.add(name)


@contextmanager
def parent_of(out: Path | str, rel: str) -> Iterator[tuple[int, str]]:
    """``(folder fd, name)`` for ``OUT/rel``, reached without following any symlink.

    Raises ``SymlinkOnTheWay`` for a symlinked folder, ``FileNotFoundError`` or
    ``NotADirectoryError`` when the way is missing or blocked by a file.
    """
    *folders, name = rel.split("/")
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, part in enumerate(folders, 1):
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, fd):
                    raise SymlinkOnTheWay("/".join(folders[:depth])) from None
                raise
            os.close(fd)
            fd = inner
        yield fd, name
    finally:
        os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def remove_file(out: Path | str, rel: str) -> bool:
    """Unlink the file or symlink at ``OUT/rel`` (never what a symlink points to, never a
    folder); False when nothing is there. ``SymlinkOnTheWay`` as ``parent_of``."""
    with parent_of(out, rel) as (fd, name):
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return False
        os.unlink(name, dir_fd=fd)
        return True


def remove_folder(out: Path | str, rel: str) -> None:
    """``rmdir`` of ``OUT/rel`` if it is an empty folder (a symlink there is left alone)."""
    with parent_of(out, rel) as (fd, name):
        os.rmdir(name, dir_fd=fd)


def open_file(out: Path | str, rel: str, *, follow_last: bool) -> int:
    """A read-only fd of ``OUT/rel``; the last component is followed only if ``follow_last``
    (a file ``--mode symlink`` placed is a symlink to the source)."""
    # O_NONBLOCK: a FIFO planted at the name must not hang the reader (no effect on files).
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_last else os.O_NOFOLLOW)
    with parent_of(out, rel) as (fd, name):
        return os.open(name, flags, dir_fd=fd)


def is_link(out: Path | str, rel: str) -> bool:
    """Whether ``OUT/rel`` itself is a symlink (its folders are walked as ``parent_of``)."""
    with parent_of(out, rel) as (fd, name):
        return _is_link(name, fd)
