"""``.vxds/shard-digests.json``: the digest and line count of each lock file read before,
keyed by what ``stat`` says of it, so a reader does not read and hash a file again that
has not changed since (``read_lock(..., digests=...)``; ``vxds verify`` uses it).

The key is (size, mtime_ns, inode, ctime_ns). Editing a file changes its ctime whatever
else is kept (``os.utime`` can put back the modification time, never the change time), so
a file with the same key holds the bytes it held. A file changed less than ``RACY_NS``
before it was read could still change within one tick of a coarse clock unseen: its
digest is not remembered, and the next read hashes it again. Like every ``JsonCache`` it
is an optimisation only: a missing or damaged file is an empty cache.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from vxds.fs import JsonCache

RACY_NS = 2_000_000_000
FILE = "shard-digests.json"
Key = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns


def stat_key(st: os.stat_result) -> Key:
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


class ShardDigests(JsonCache):
    """Absolute path of a lock file -> [size, mtime_ns, inode, ctime_ns, digest, count]."""

    VERSION = 1

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, self.VERSION)
        self._entries = self.table("files")

    @classmethod
    def under(cls, cache_dir: Path) -> ShardDigests:
        return cls(cache_dir / FILE)

    def vouches(self, path: Path, st: os.stat_result, listed: tuple[int, str]) -> bool:
        """Whether ``path``, as ``st`` finds it, is known to hold ``listed`` (count, digest)."""
        entry = self._entries.get(str(path))
        return isinstance(entry, list) and entry == [*stat_key(st), listed[1], listed[0]]

    def remember(self, path: Path, st: os.stat_result, count: int, digest: str) -> None:
        """What a read of ``path`` (stat'ed as ``st`` before it) found, unless it is racy."""
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
            self._entries.pop(str(path), None)
            return
        entry = [*stat_key(st), digest, count]
        if self._entries.get(str(path)) != entry:
            self._entries[str(path)] = entry
            self.mark()
