"""The lock a run materializes, read with every line checked before anything is written.

The digests in ``lock.toml`` vouch for the bytes, not for the lines: a lock resealed by hand
(lines edited, digests made to match) can hold any lines. ``vxds verify``'s line checks
(``vxds.verify.integrity.lines_pass``) are the ones every line must pass; they remember each
shard that passed, by its digest, in ``.vxds/verified.json``, so a lock verified (or
materialized) before is not parsed a second time to be checked. A lock whose lines do not
all pass is read again line by line, which names the lines at fault (``CorruptLock``).
"""

from __future__ import annotations

from pathlib import Path

from vxds.locks.store import Lock, read_lock
from vxds.project.config import Config


def read_checked(directory: Path, config: Config, *, jobs: int | None = None) -> Lock:
    """The lock in ``directory``: its digests and counts checked, and every line."""
    from vxds.verify.integrity import lines_pass  # what costs start-up, only here

    lock = read_lock(directory)
    if lines_pass(config, lock, jobs=jobs):
        return lock  # the lines checked are these very bytes (read once, kept in memory)
    return read_lock(directory, deep=True, parsed=True)
