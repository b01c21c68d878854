"""The checks a lock read as a stream gets, since it is never held in memory whole.

``checked_lines`` yields a split file's lines and checks its count and digest against the
header at the end (and a carriage return anywhere at once); ``check_header`` checks a
header's digest and its list of splits against the split files present.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from blake3 import blake3

from vxds.hashing import PREFIX
from vxds.locks.format import HEADER, CorruptLock, Header, Problem
from vxds.locks.shards import all_files

BLOCK = 1 << 20


def checked_lines(stream: IO[bytes], where: str, expected: tuple[int, str] | None) -> Iterator[bytes]:
    """The lines of a split file, read in blocks; its count and digest are checked at the end.

    Lines end with ``\\n`` alone, as ``locks.splits.split_lines`` has them; a ``\\r`` anywhere
    is a corrupt lock, found before the line that holds it is yielded.
    """
    hasher, count, rest = blake3(), 0, b""
    name = where.rpartition("/")[2]
    while block := stream.read(BLOCK):
        hasher.update(block)
        if (at := block.find(b"\r")) >= 0:
            line = count + (rest + block[:at]).count(b"\n") + 1
            message = f"{where}:{line}: a carriage return ('\\r'); lines end with '\\n' only"
            problem = Problem(message, kind="split-digest", file=name, line=line)
            raise CorruptLock(Path(where).parent, [problem])
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        count += len(lines)
        yield from lines
    problems = []
    if rest:
        problems.append(f"{where} does not end with a newline")
    if expected is not None:
        if count != expected[0]:
            problems.append(f"{where} has {count} lines, {HEADER} says {expected[0]}")
        if PREFIX + hasher.hexdigest() != expected[1]:
            problems.append(f"{where} does not match its digest")
    if problems:
        raise CorruptLock(Path(where).parent, [Problem(p, kind="split-digest", file=name) for p in problems])


def check_header(header: Header, claimed: str, files: set[str], where: Path) -> None:
    """The header's own digest, and its splits against the split and shard files there."""
    problems = []
    if claimed != header.digest:
        problems.append(Problem("the lock digest does not match the header", kind="lock-digest"))
    listed = all_files(header)
    for extra in sorted(files - set(listed)):
        problems.append(Problem(f"{extra} is not listed in {HEADER}", kind="unlisted-split", file=extra))
    for name in listed:
        if name not in files:
            problems.append(Problem(f"{name} is missing", kind="missing-split", file=name))
    if problems:
        raise CorruptLock(where, problems)
