"""The three sides of the merge Git is running, read from Git objects for the merge driver.

Git hands the driver one file's three versions. Merging a sharded split that both sides
changed in the same shards needs every shard of the split on every side: they are read from
the commits of the merge, ``HEAD`` (ours), the commit ``git merge`` names in its
``GITHEAD_<id>`` environment variable (theirs) and their merge bases, with one
``git cat-file --batch``. Every file read is checked against the digest its header lists,
so a file is never taken from the wrong side; one not found leaves the merge to a relock.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path, PurePosixPath

from vxds.hashing import digest_bytes
from vxds.locks.format import HEADER, CorruptLock, Header, parse_header
from vxds.locks.shards import listed_files

GITHEAD_RE = re.compile(r"GITHEAD_([0-9a-f]{40,64})\Z")


def _git(*args: str, data: bytes | None = None) -> bytes | None:
    result = subprocess.run(["git", *args], input=data, capture_output=True, check=False)
    return result.stdout if result.returncode == 0 else None


def blobs(specs: list[str]) -> list[bytes | None]:
    """Each ``rev:path`` blob's bytes (None where there is none), from one ``git cat-file``."""
    out = _git("cat-file", "--batch", data="".join(f"{s}\n" for s in specs).encode()) if specs else None
    if out is None:
        return [None for _ in specs]
    found: list[bytes | None] = []
    at = 0
    for _ in specs:
        end = out.index(b"\n", at)
        words = out[at:end].split()
        if len(words) != 3 or words[1] != b"blob":
            found.append(None)
            at = end + 1
            continue
        size = int(words[2])
        found.append(out[end + 1 : end + 1 + size])
        at = end + 2 + size
    return found


class MergeSides:
    """The commits of the running merge, and the lock files they hold."""

    def __init__(self) -> None:
        theirs = sorted(m.group(1) for name in os.environ if (m := GITHEAD_RE.match(name)))
        bases = (_git("merge-base", "--all", "HEAD", *theirs) or b"").decode().split() if theirs else []
        self.revs = {"base": bases, "ours": ["HEAD"], "theirs": theirs}
        self.cache: dict[str, bytes] = {}  # digest -> bytes

    def headers(self, folder: str) -> tuple[Header | None, Header | None, Header | None]:
        """The lock header of ``folder`` (relative to the repository) on each side."""
        path = str(PurePosixPath(folder) / HEADER)
        found = []
        for side in ("base", "ours", "theirs"):
            texts = [b for b in blobs([f"{rev}:{path}" for rev in self.revs[side]]) if b is not None]
            found.append(_parse(texts[0], path) if len(texts) == 1 else None)
        return found[0], found[1], found[2]

    def files(self, folder: str, side: str, header: Header | None, split: str) -> dict[str, bytes] | None:
        """The files of ``split`` as ``side``'s ``header`` lists them, in order (None: one
        not found with its digest)."""
        if header is None or split not in header.splits:
            return {}
        listed = listed_files(header, split)
        wanted = {file for file, (_, digest) in listed if digest not in self.cache}
        specs = [
            f"{rev}:{PurePosixPath(folder) / file}" for file in sorted(wanted) for rev in self.revs[side]
        ]
        for data in blobs(specs):
            if data is not None:
                self.cache.setdefault(digest_bytes(data), data)
        if any(digest not in self.cache for _, (_, digest) in listed):
            return None
        return {file: self.cache[digest] for file, (_, digest) in listed}


def _parse(data: bytes, path: str) -> Header | None:
    try:
        return parse_header(data.decode("utf-8"), Path(path))[0]
    except (UnicodeDecodeError, CorruptLock):
        return None
