"""The split files of a lock: ``resources.<split>.jsonl``, or a split's shards
(``vxds.locks.shards``).

A split's lines are the sorted canonical lines of its resources, ``\\n``-terminated. A
``Split`` holds one file's bytes with its count and digest; ``split_lines`` is the one line
splitter every reader uses; ``line_problems`` checks every line; ``read_split`` reads a file
(never through a link) with the facts the header's counts and digests are checked against.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, overload

import orjson
from blake3 import blake3

from vxds.errors import LockError
from vxds.hashing import PREFIX
from vxds.locks import shards as shards_module
from vxds.locks.format import HEADER, CorruptLock, Problem
from vxds.locks.positions import SplitSequence
from vxds.locks.shards import SPLIT_FILE_RE as SPLIT_FILE_RE  # re-exported
from vxds.locks.shards import (
    Shard,
    ShardRule,
    line_id,
    shard_file,
    split_digest,
    starts,
    types_of,
)
from vxds.locks.shards import split_file as split_file  # re-exported
from vxds.resource import InvalidResource, Resource, check_id, check_uri, nfc, normalize

CHUNK_LINES = 8192
Twins = dict[str, tuple[str, str, int]]  # NFC form of a non-ASCII id -> (id, file, line)


def digest_chunks(chunks: Sequence[bytes]) -> str:
    """Digest of the concatenated chunks, hashed a block of chunks at a time."""
    hasher = blake3()
    for i in range(0, len(chunks), CHUNK_LINES):
        hasher.update(b"".join(chunks[i : i + CHUNK_LINES]))
    return PREFIX + hasher.hexdigest()


@dataclass(frozen=True)
class Split(SplitSequence):
    """One split's content: its files' bytes in chunks, with count and digest.

    A chunk is one newline-terminated line (a lock being built) or a run of them (a lock
    read from disk); the split's lines are their concatenation. Splits compare by count and
    digest, the digest the header lists (``vxds.locks.shards``). ``shards`` lists the shards
    of a split of several (empty for one), ``parts`` the chunk each starts at. ``path`` (or,
    for a split of several, ``paths``) is the file read, named when one of its lines is bad.
    It is a sequence of resources in id order (``vxds.locks.positions``).
    """

    chunks: Sequence[bytes] = field(compare=False, repr=False)  # or read shard by shard (recipes.spill)
    count: int
    digest: str
    path: Path | None = field(default=None, compare=False, repr=False)
    shards: tuple[Shard, ...] = field(default=(), compare=False, repr=False)
    parts: tuple[int, ...] = field(default=(), compare=False, repr=False)
    paths: tuple[Path, ...] = field(default=(), compare=False, repr=False)
    # Every line as a Resource, when the reader checked each line and kept what it parsed
    # (``read_lock(deep=True, parsed=True)``): the lines are then not parsed again.
    parsed: Sequence[Resource] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_lines(cls, lines: Sequence[bytes], rule: ShardRule | None = None) -> Split:
        """From sorted canonical lines without their newlines."""
        return cls.from_terminated([line + b"\n" for line in lines], rule)

    @classmethod
    def from_terminated(cls, lines: list[bytes], rule: ShardRule | None = None) -> Split:
        """From sorted, newline-terminated lines, kept as they are, cut into shards by ``rule``.

        Not joined: the lines are freed in sort order, not allocation order, so joining
        them would hold a second copy of the content rather than replace the first.
        """
        bounds = starts(lines, rule or shards_module.RULE)
        if len(bounds) == 1:
            return cls(lines, len(lines), digest_chunks(lines))
        ends = [*bounds[1:], len(lines)]
        pairs = zip(bounds, ends, strict=True)
        shards = tuple(
            Shard(line_id(lines[a]), b - a, digest_chunks(lines[a:b]), types_of(lines[a:b])) for a, b in pairs
        )
        return cls(lines, len(lines), split_digest(shards), shards=shards, parts=tuple(bounds))

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> Split:
        return cls([data] if data else [], data.count(b"\n"), digest_chunks([data]), path)

    @cached_property
    def content_digest(self) -> str:
        """blake3 of the split's lines as one file (its digest in format 1)."""
        return self.digest if not self.shards else digest_chunks(self.chunks)

    def files(self, split: str) -> list[tuple[str, Sequence[bytes]]]:
        """Each file of the split (``split`` is its name) with its chunks, in order."""
        if not self.shards:
            return [(split_file(split), self.chunks)]
        ends = [*self.parts[1:], len(self.chunks)]
        triples = zip(self.shards, self.parts, ends, strict=True)
        return [(shard_file(split, s.first), self.chunks[a:b]) for s, a, b in triples]

    def lines(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            yield from split_lines(chunk)

    def resources(self) -> Iterator[Resource]:
        """Each line as a ``Resource``, parsed but not validated (``read_lock(deep=True)``
        checks every line); ``CorruptLock`` names a line that is no resource record at all."""
        if self.parsed is not None:
            yield from self.parsed
            return
        if not self.paths:
            yield from _resources(self.lines(), self.path)
            return
        for chunk, path in zip(self.chunks, self.paths, strict=True):
            yield from _resources(iter(split_lines(chunk)), path)


def _resources(lines: Iterator[bytes], path: Path | None) -> Iterator[Resource]:
    for number, line in enumerate(lines, start=1):
        try:
            resource = Resource.from_line(line)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            file = path.name if path is not None else "split"
            where = path.parent if path is not None else Path(file)
            reason = str(exc) if isinstance(exc, orjson.JSONDecodeError) else "not a resource record"
            problem = Problem(f"{file}:{number}: {reason}", kind="json", file=file, line=number)
            raise CorruptLock(where, [problem]) from None
        yield resource


def header_shards(splits: Mapping[str, Split]) -> dict[str, tuple[Shard, ...]]:
    """What ``Header.shards`` lists for these splits: the splits of several shards."""
    return {name: split.shards for name, split in sorted(splits.items()) if split.shards}


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


def line_problems(
    split: str,
    data: bytes,
    file: str | None = None,
    normalised: Twins | None = None,
    parsed: list[Resource] | None = None,
) -> Iterator[Problem]:
    """Line-level checks of a split file's bytes: JSON, schema, canonical form, order and
    duplicates, ids that are one name once Unicode-normalised among them. ``file`` is the
    file named in the problems (a shard's; by default the split's one file); ``normalised``
    (NFC form of an id -> (id, file, line)) is shared by the shards of one split; each
    line's resource is appended to ``parsed`` when given (complete only without problems)."""
    from vxds.locks import conflicts  # Git's conflict markers: one problem per conflict instead

    name = file or split_file(split)
    if conflicts.has_conflict(data):
        return (yield from conflicts.conflict_problems(name, data))
    previous: str | None = None
    normalised = {} if normalised is None else normalised
    for number, line in enumerate(split_lines(data), start=1):
        record, found = _parse_line(line, f"{name}:{number}")
        yield from (Problem(text, kind=kind, file=name, line=number) for kind, text in found)
        if record is None:
            continue
        if parsed is not None:
            parsed.append(Resource.from_record(record))
        rid = record["id"]
        if previous is not None and rid <= previous:
            kind, words = ("duplicate", "repeats") if rid == previous else ("order", "is out of order")
            yield Problem(f"{name}:{number}: id {rid!r} {words}", kind=kind, file=name, line=number)
        twin, in_file, at = normalised.setdefault(nfc(rid), (rid, name, number))
        if twin != rid:
            where = f"line {at}" if in_file == name else f"{in_file}:{at}"
            message = f"{name}:{number}: ids {twin!r} ({where}) and {rid!r} are one name in NFC"
            yield Problem(message, kind="duplicate", file=name, line=number)
        previous = rid


def split_problems(split: str, content: Split) -> list[Problem]:
    """``line_problems`` of a split's every file, each named by its own file and line, and
    the ``boundary_problems`` of its shards."""
    if not content.paths:
        return list(line_problems(split, b"".join(content.chunks)))
    normalised: Twins = {}
    found = [
        problem
        for chunk, path in zip(content.chunks, content.paths, strict=True)
        for problem in line_problems(split, chunk, path.name, normalised)
    ]
    return found + list(boundary_problems(split, content.shards, content.chunks))


def boundary_problems(split: str, shards: Sequence[Shard], chunks: Sequence[bytes]) -> Iterator[Problem]:
    """The shards of a split read whole: each file starts with the id the header lists for
    it and ends before the next shard's first id."""
    for i, (shard, data) in enumerate(zip(shards, chunks, strict=False)):
        file, lines = shard_file(split, shard.first), split_lines(data)
        try:
            first, last = line_id(lines[0]), line_id(lines[-1])
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            continue  # line_problems names the line
        if first != shard.first:
            message = f"{file}:1: id {first!r} is not the shard's first id in {HEADER}, {shard.first!r}"
            yield Problem(message, kind="order", file=file, line=1)
        if i + 1 < len(shards) and last >= shards[i + 1].first:
            message = f"{file}:{len(lines)}: id {last!r} is not before the next shard's first id"
            yield Problem(message, kind="order", file=file, line=len(lines))


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


class LazyChunks(Sequence[bytes]):
    """A split's chunks as read from its folder, one per file, where the files a
    ``ShardDigests`` vouched for are read only when their bytes are asked for (and their
    digest checked then: a file changed since is ``CorruptLock``). Slices share the reads."""

    def __init__(self, files: list[list[Any]], start: int = 0, stop: int | None = None) -> None:
        self._files = files  # [path, bytes or None (not read yet), digest]
        self._range = range(start, len(files) if stop is None else stop)

    def __len__(self) -> int:
        return len(self._range)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> LazyChunks: ...
    def __getitem__(self, index: int | slice) -> bytes | LazyChunks:
        if isinstance(index, slice):
            picked = self._range[index]
            if picked.step != 1:
                raise ValueError("a step in a slice of a split's files")
            return LazyChunks(self._files, picked.start, picked.stop)
        entry = self._files[self._range[index]]
        if entry[1] is None:
            entry[1] = _read_vouched(entry[0], entry[2])
        data: bytes = entry[1]
        return data


def _read_vouched(path: Path, digest: str) -> bytes:
    try:
        data, facts = read_split(path, load=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problem = Problem(f"cannot read {path.name}: {reason}", kind="unreadable", file=path.name)
        raise CorruptLock(path.parent, [problem]) from None
    if facts.digest != digest:
        problem = Problem(f"{path.name} does not match its digest", kind="split-digest", file=path.name)
        raise CorruptLock(path.parent, [problem])
    assert data is not None
    return data


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
