"""Is a dataset's lock fresh, stale, missing or corrupt? Answered without running code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vxds.errors import LockError
from vxds.hashing import digest_text
from vxds.locks.format import HEADER, CorruptLock, Header
from vxds.locks.recovery import restore_set_aside
from vxds.locks.store import check_lock, lock_dir, read_lock
from vxds.project.config import Config
from vxds.project.manifest import Entry

FRESH, STALE, MISSING, CORRUPT = "fresh", "stale", "missing", "corrupt"
MERGED, FROZEN = "merged", "frozen"  # fresh, but written by the merge driver / closed by 'vxds bump'
FROZEN_REASON = "frozen: true in the manifest: its lock is kept as published, never relocked"
MERGED_REASON = "merged by Git, not written by its recipe: relock before release"


@dataclass(frozen=True)
class LockStatus:
    entry: Entry
    path: Path
    state: str
    reasons: tuple[str, ...] = ()
    header: Header | None = None  # the lock's header, when it could be read and checked


def staleness(entry: Entry, header: Header, read: Callable[[Path], str] | None = None) -> list[str]:
    """Why a lock no longer matches ``entry``: recipe text, params or manifest entry.

    ``read`` gives a script's text (default: from the working tree; ``vxds diff`` reads it
    at a revision). A frozen entry is never stale: its recipe may go on changing for the
    versions after it.
    """
    if entry.frozen:
        return []
    reasons = []
    try:
        text_digest = digest_text(read(entry.script) if read else entry.script.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        reasons.append(f"the recipe script {entry.script_location} cannot be read")
    else:
        if text_digest != header.script_digest:
            reasons.append(f"the recipe script {entry.script_location} changed")
    if dict(entry.params) != dict(header.params):
        reasons.append("the recipe params changed")
    if entry.digest() != header.entry_digest:
        reasons.append("the manifest entry changed")
    return reasons


def _conflicts(path: Path) -> tuple[str, ...]:
    """Why a lock Git left conflicted is corrupt, in one sentence per conflict."""
    from vxds.locks.conflicts import conflicts_in, message

    return tuple(f"{file}: {message(line)} ('vxds lock' rewrites it)" for file, line in conflicts_in(path))


def lock_status(entry: Entry, config: Config, *, deep: bool = False) -> LockStatus:
    path = lock_dir(config.locks, entry.name, entry.version)
    if not (path / HEADER).is_file() and not restore_set_aside(path):
        return LockStatus(entry, path, MISSING, (f"no lock at {config.relative(path)}",))
    try:  # streaming unless every line is to be checked: a listing holds no lock in memory
        header = read_lock(path, deep=True).header if deep else check_lock(path)
    except CorruptLock as exc:
        return LockStatus(entry, path, CORRUPT, _conflicts(path) or tuple(exc.problems))
    except LockError as exc:
        return LockStatus(entry, path, CORRUPT, _conflicts(path) or (exc.message,))
    if (header.name, header.version) != (entry.name, entry.version):
        return LockStatus(entry, path, CORRUPT, (f"{HEADER} names {header.key}, not {entry.key}",), header)
    reasons = staleness(entry, header)
    state = STALE if reasons else MERGED if header.merged else FROZEN if entry.frozen else FRESH
    if header.merged:
        reasons.append(MERGED_REASON)
    if entry.frozen:
        reasons.append(FROZEN_REASON)
    return LockStatus(entry, path, state, tuple(reasons), header)
