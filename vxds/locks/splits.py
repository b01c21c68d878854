"""The split files of a lock: ``resources.<split>.jsonl``, one per split.

Each split file is the sorted canonical lines of its resources, ``\\n``-terminated. A
``Split`` holds one file's bytes with its count and digest; ``split_lines`` is the one line
splitter every reader uses; ``line_problems`` checks every line; ``read_split`` reads a file
(never through a link) with the facts the header's counts and digests are checked against.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from blake3 import blake3

from vxds.errors import LockError
from vxds.hashing import PREFIX
from vxds.locks.format import HEADER, CorruptLock, Problem
from vxds.resource import InvalidResource, Resource, check_id, check_uri, nfc, normalize

SPLIT_FILE_RE = re.compile(r"resources\.([A-Za-z0-9_-]+)\.jsonl\Z")
CHUNK_LINES = 8192


def split_file(split: str) -> str:
    return f"resources.{split}.jsonl"


def digest_chunks(chunks: Sequence[bytes]) -> str:
    """Digest of the concatenated chunks, hashed a block of chunks at a time."""
    hasher = blake3()
    for i in range(0, len(chunks), CHUNK_LINES):
        hasher.update(b"".join(chunks[i : i + CHUNK_LINES]))
    return PREFIX + hasher.hexdigest()


@dataclass(frozen=True)
class Split:
    """One split's content: its file's bytes in chunks, with count and digest.

    A chunk is one newline-terminated line (a lock being built) or a run of them (a lock
    read from disk); the file is their concatenation. Splits compare by count and digest.
    ``path`` is the file a split was read from, named when one of its lines is bad.
    """

    chunks: list[bytes] = field(compare=False, repr=False)
    count: int
    digest: str
    path: Path | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_lines(cls, lines: Sequence[bytes]) -> Split:
        """From sorted canonical lines without their newlines."""
        return cls.from_terminated([line + b"\n" for line in lines])

    @classmethod
    def from_terminated(cls, lines: list[bytes]) -> Split:
        """From sorted, newline-terminated lines, kept as they are.

        Not joined: the lines are freed in sort order, not allocation order, so joining
        them would hold a second copy of the content rather than replace the first.
        """
        return cls(lines, len(lines), digest_chunks(lines))

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> Split:
        return cls([data] if data else [], data.count(b"\n"), digest_chunks([data]), path)

    def lines(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            yield from split_lines(chunk)

    def resources(self) -> Iterator[Resource]:
        """Each line as a ``Resource``, parsed but not validated (``read_lock(deep=True)``
        checks every line); ``CorruptLock`` names a line that is no resource record at all."""
        for number, line in enumerate(self.lines(), start=1):
            try:
                resource = Resource.from_line(line)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                file = self.path.name if self.path is not None else "split"
                where = self.path.parent if self.path is not None else Path(file)
                reason = str(exc) if isinstance(exc, orjson.JSONDecodeError) else "not a resource record"
                problem = Problem(f"{file}:{number}: {reason}", kind="json", file=file, line=number)
                raise CorruptLock(where, [problem]) from None
            yield resource


def split_lines(data: bytes) -> list[bytes]:
    """The lines of split-file bytes: the one splitter every reader uses.

    Lines end with ``\\n`` and nothing else (``bytes.splitlines`` would also split on a bare
    ``\\r``, hiding a resource from the readers that count ``\\n``); the text after the last
    ``\\n``, if any, is a line too, so that no byte is ever silently dropped.
    """
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def line_problems(split: str, data: bytes) -> Iterator[Problem]:
    """Line-level checks of a split file's bytes: JSON, schema, canonical form, order and
    duplicates, ids that are one name once Unicode-normalised among them."""
    from vxds.locks import conflicts  # Git's conflict markers: one problem per conflict instead

    if conflicts.has_conflict(data):
        return (yield from conflicts.conflict_problems(split_file(split), data))
    previous: str | None = None
    name = split_file(split)
    normalised: dict[str, tuple[str, int]] = {}  # NFC form of a non-ASCII id -> (id, line)
    for number, line in enumerate(split_lines(data), start=1):
        record, found = _parse_line(line, f"{name}:{number}")
        yield from (Problem(text, kind=kind, file=name, line=number) for kind, text in found)
        if record is None:
            continue
        rid = record["id"]
        if previous is not None and rid <= previous:
            kind, words = ("duplicate", "repeats") if rid == previous else ("order", "is out of order")
            yield Problem(f"{name}:{number}: id {rid!r} {words}", kind=kind, file=name, line=number)
        twin, at = normalised.setdefault(nfc(rid), (rid, number))
        if twin != rid:
            message = f"{name}:{number}: ids {twin!r} (line {at}) and {rid!r} are one name in NFC"
            yield Problem(message, kind="duplicate", file=name, line=number)
        previous = rid


def _parse_line(line: bytes, where: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """A line's record (None if it has none) and its problems as ``(kind, text)``."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, [("json", f"{where}: {exc}")]
    try:
        record = normalize(value)
    except InvalidResource as exc:
        return None, [("unsafe-id" if _unsafe_id(value) else "schema", f"{where}: {exc}")]
    if orjson.dumps(record, option=orjson.OPT_SORT_KEYS) != line:
        return record, [("canonical", f"{where}: line is not in canonical form")]
    return record, []


def _unsafe_id(value: object) -> bool:
    """True when a line's id or uri is a string that ``check_id`` or ``check_uri`` refuses."""
    if not isinstance(value, dict):
        return False
    for check, field_value in ((check_id, value.get("id")), (check_uri, value.get("uri"))):
        if isinstance(field_value, str):
            try:
                check(field_value)
            except InvalidResource:
                return True
    return False


def open_lock_file(path: Path) -> BinaryIO:
    """A lock file opened for reading, which must be a regular file.

    Not a link (it could lead anywhere), nor a folder, FIFO or device (a FIFO would hang
    the reader, ``/dev/zero`` never ends): vxds writes none of these, and Git can hold links.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        if exc.errno != errno.ENOENT and path.is_symlink():
            raise OSError(errno.ELOOP, "it is a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "it is not a regular file", str(path))
    return os.fdopen(fd, "rb")


@dataclass(frozen=True)
class SplitFacts:
    """What the header's checks need to know about a split file's bytes."""

    digest: str
    count: int
    newline_end: bool
    carriage_return: int | None  # the line of the first '\r'

    @classmethod
    def of(cls, blocks: Iterator[bytes]) -> SplitFacts:
        hasher, count, last, cr = blake3(), 0, b"\n", None
        for block in blocks:
            hasher.update(block)
            if cr is None and (at := block.find(b"\r")) >= 0:
                cr = count + block.count(b"\n", 0, at) + 1
            count += block.count(b"\n")
            last = block[-1:] or last
        return cls(PREFIX + hasher.hexdigest(), count, last == b"\n", cr)

    def problems(self, file: str, count: int, digest: str) -> Iterator[Problem]:
        if self.carriage_return is not None:
            line = self.carriage_return
            message = f"{file}:{line}: a carriage return ('\\r'); lines end with '\\n' only"
            yield Problem(message, kind="split-digest", file=file, line=line)
        if not self.newline_end:
            yield Problem(f"{file} does not end with a newline", kind="split-digest", file=file)
        if self.digest != digest:
            yield Problem(f"{file} does not match its digest", kind="split-digest", file=file)
        if self.count != count:
            message = f"{file} has {self.count} lines, {HEADER} says {count}"
            yield Problem(message, kind="split-digest", file=file)


def read_split(path: Path, *, load: bool) -> tuple[bytes | None, SplitFacts]:
    """A split file's facts and, with ``load``, its bytes (otherwise read in blocks, not kept)."""
    with open_lock_file(path) as fh:
        if load:
            data = fh.read()
            return data, SplitFacts.of(iter([data]))
        return None, SplitFacts.of(iter(lambda: fh.read(1 << 20), b""))


def read_split_file(path: Path) -> Split:
    """A bare ``resources.<split>.jsonl`` (no header vouches for it), with every line checked."""
    match = SPLIT_FILE_RE.match(path.name)
    split = match.group(1) if match else path.name
    try:
        data, facts = read_split(path, load=True)
    except OSError as exc:
        raise LockError(f"{path}: cannot read: {exc.strerror or exc}") from None
    assert data is not None
    problems = list(facts.problems(path.name, facts.count, facts.digest))
    problems += line_problems(split, data)
    if problems:
        raise CorruptLock(path, problems)
    return Split([data] if data else [], facts.count, facts.digest, path)
