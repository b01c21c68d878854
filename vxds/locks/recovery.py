"""What a ``vxds lock`` killed mid-write leaves beside a lock folder, and putting it right.

A write puts the new lock in ``.<version>.tmp-<pid>-<random>/`` beside the old one, flushes
it to the disk, moves the old lock to ``.<version>.old-<pid>-<random>/``, renames the new
one into place, flushes the folder and removes the old one (``vxds.locks.store``). A
process killed in the middle leaves one of those folders behind: the next write removes it
(``leftovers``), or puts a set-aside lock back when it is the only copy (``recover``), a
reader puts it back too (``restore_set_aside``), and ``vxds verify`` reports leftovers.
None of this runs recipe code.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from vxds.fs import exclusive, fsync_dir, pid_alive
from vxds.locks.format import HEADER

_ASIDE_RE = re.compile(r"\.(?P<version>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-[0-9a-f]+)?\Z")


def _aside(directory: Path) -> Iterator[tuple[Path, str, int]]:
    """Folders that writes of ``directory`` left beside it: (path, "tmp" or "old", pid)."""
    try:
        names = sorted(os.listdir(directory.parent))
    except OSError:
        return
    for name in names:
        match = _ASIDE_RE.match(name)
        if match and match["version"] == directory.name:
            yield directory.parent / name, match["kind"], int(match["pid"])


def _mtime(path: Path) -> int | None:
    try:
        return path.lstat().st_mtime_ns
    except OSError:
        return None


def leftovers(directory: Path) -> list[Path]:
    """What killed writes left beside the lock ``directory`` and no live write owns.

    A temporary or set-aside folder is a leftover when its process is gone, or when it is
    older than the lock in place (its pid may have been reused since). A set-aside lock
    while no lock is in place is not: it is the lock, and ``recover`` puts it back.
    """
    lock_time = _mtime(directory / HEADER)
    found = []
    for path, kind, pid in _aside(directory):
        if kind == "old" and lock_time is None:
            continue
        mtime = _mtime(path)
        if mtime is not None and (not pid_alive(pid) or (lock_time is not None and mtime < lock_time)):
            found.append(path)
    return found


def leftovers_of_dataset(folder: Path) -> list[Path]:
    """``leftovers`` of every version in a dataset's folder (``locks/<name>/``), including
    versions whose first lock was killed before it was ever in place."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    versions = sorted({match["version"] for name in names if (match := _ASIDE_RE.match(name))})
    return [path for version in versions for path in leftovers(folder / version)]


def restore(directory: Path) -> None:
    """Rename a set-aside lock back into place when no lock is there (the caller holds the guard)."""
    if directory.exists() or not directory.parent.is_dir():
        return
    for path, kind, _ in _aside(directory):
        if kind == "old":
            os.replace(path, directory)
            fsync_dir(directory.parent)
            return


def recover(directory: Path, guard: Path | None = None) -> None:
    """Put back a lock left aside by a write that was killed between its two renames.

    Runs no recipe code, so readers may call it. With the ``guard`` writers hold
    (``guard_file``), it waits for a write in progress instead of racing its renames.
    """
    with exclusive(guard):
        restore(directory)


def set_aside(directory: Path) -> list[Path]:
    """Locks left aside (``.<version>.old-*``) by a ``vxds lock`` killed between its renames."""
    try:
        return sorted(directory.parent.glob(f".{glob.escape(directory.name)}.old-*"))
    except OSError:
        return []


def restore_set_aside(directory: Path) -> bool:
    """Put back a lock that a killed ``vxds lock`` left aside: a reader may, no recipe runs.

    A live writer is between its two renames for an instant only, so the lock is put back
    when it is still missing a moment later. True when there is a lock afterwards.
    """
    if (directory / HEADER).exists():
        return True
    if not set_aside(directory):
        return False
    time.sleep(0.1)
    if not directory.exists():
        with contextlib.suppress(OSError):  # a writer finished its swap meanwhile: read its lock
            recover(directory)
    return (directory / HEADER).exists()
