"""Is a dataset's lock fresh, stale, missing or corrupt? Answered without running code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vxds.config import Config
from vxds.errors import LockError
from vxds.hashing import digest_text
from vxds.lockfile import HEADER, CorruptLock, Lock, lock_dir, read_lock
from vxds.manifest import Entry

FRESH, STALE, MISSING, CORRUPT = "fresh", "stale", "missing", "corrupt"


@dataclass(frozen=True)
class LockStatus:
    entry: Entry
    path: Path
    state: str
    reasons: tuple[str, ...] = ()
    lock: Lock | None = None


def staleness(entry: Entry, lock: Lock) -> list[str]:
    """Why ``lock`` no longer matches ``entry``: recipe text, params or manifest entry."""
    reasons = []
    try:
        text_digest = digest_text(entry.script.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        reasons.append(f"the recipe script {entry.script_location} cannot be read")
    else:
        if text_digest != lock.header.script_digest:
            reasons.append(f"the recipe script {entry.script_location} changed")
    if dict(entry.params) != dict(lock.header.params):
        reasons.append("the recipe params changed")
    if entry.digest() != lock.header.entry_digest:
        reasons.append("the manifest entry changed")
    return reasons


def lock_status(entry: Entry, config: Config, *, deep: bool = False) -> LockStatus:
    path = lock_dir(config.locks, entry.name, entry.version)
    if not (path / HEADER).is_file():
        return LockStatus(entry, path, MISSING, (f"no lock at {config.relative(path)}",))
    try:
        lock = read_lock(path, deep=deep)
    except CorruptLock as exc:
        return LockStatus(entry, path, CORRUPT, tuple(exc.problems))
    except LockError as exc:
        return LockStatus(entry, path, CORRUPT, (exc.message,))
    if (lock.header.name, lock.header.version) != (entry.name, entry.version):
        return LockStatus(entry, path, CORRUPT, (f"{HEADER} names {lock.header.key}, not {entry.key}",), lock)
    reasons = staleness(entry, lock)
    return LockStatus(entry, path, STALE if reasons else FRESH, tuple(reasons), lock)
