"""Sorting a split's lines with bounded memory: sorted runs spilled to files, then merged.

A recipe may yield millions of resources; ``Sorter`` keeps at most ``SPILL_BYTES`` of
canonical lines in memory, sorts them by id and writes them to a *run* file in a workspace
folder (``workspace``: under the project's ``.vxds/tmp/``, removed when the block ends,
however it ends). ``Sorter.merged`` merges the runs (``heapq.merge``) into one id-ordered
stream, and ``write_split`` writes that stream to the split's file in the workspace, cutting
shards as it goes (``vxds.locks.shards``' rule, the same cuts as ``Split.from_terminated``),
so that the split handed to the lock writer reads its shards back one at a time.

A record of a run file is ``id + b"\\0" + line``: ids hold no control character, so plain
byte order of records is id order (UTF-8 bytes sort as code points do) and the merge
compares bytes at C speed.
"""

from __future__ import annotations

import contextlib
import heapq
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from blake3 import blake3

from vxds.fs import make_dirs
from vxds.hashing import PREFIX
from vxds.locks import shards as shards_module
from vxds.locks.shards import Shard, cut_value, split_digest
from vxds.locks.split_diff import type_of
from vxds.locks.splits import Split

SPILL_BYTES = 128 << 20  # lines held in memory before a sorted run is written (tests lower it)
_RECORD_COST = 100  # a held line's bytes object, list slot and id, beyond its own length


@contextlib.contextmanager
def workspace(cache_dir: Path) -> Iterator[Path]:
    """A fresh folder under ``cache_dir/tmp`` for one lock's runs and split files, removed
    when the block ends (after an error too)."""
    parent = cache_dir / "tmp"
    make_dirs(parent)
    folder = Path(tempfile.mkdtemp(prefix="lock-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Sorter:
    """Collects one split's ``(id, line)`` pairs; ``merged`` yields them in id order."""

    def __init__(self, folder: Path, name: str) -> None:
        self._folder, self._name = folder, name
        self._held: list[bytes] = []
        self._size = 0
        self._runs: list[Path] = []

    def add(self, rid: str, line: bytes) -> None:
        record = rid.encode("utf-8") + b"\0" + line
        self._held.append(record)
        self._size += len(record) + _RECORD_COST
        if self._size >= SPILL_BYTES:
            self._spill()

    def _spill(self) -> None:
        self._held.sort()
        path = self._folder / f"run.{self._name}.{len(self._runs)}"
        with open(path, "wb") as out:
            out.writelines(self._held)
        self._runs.append(path)
        self._held, self._size = [], 0

    def merged(self) -> Iterator[tuple[bytes, bytes]]:
        """Each ``(id as UTF-8, line)`` in id order; run files are removed once read."""
        self._held.sort()
        if not self._runs:
            records: Iterable[bytes] = self._held
            self._held = []
            yield from _pairs(records)
            return
        if self._held:
            self._spill()
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(open(path, "rb", buffering=1 << 20)) for path in self._runs]
            yield from _pairs(heapq.merge(*files))
        for path in self._runs:
            path.unlink(missing_ok=True)


def _pairs(records: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    for record in records:
        at = record.index(b"\0")
        yield record[:at], record[at + 1 :]


class FileChunks(Sequence[bytes]):
    """A split file's shards as chunks, each read from the file when it is asked for."""

    def __init__(self, path: Path, spans: Sequence[tuple[int, int]]) -> None:
        self._path, self._spans = path, list(spans)

    def __len__(self) -> int:
        return len(self._spans)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> FileChunks: ...
    def __getitem__(self, index: int | slice) -> bytes | FileChunks:
        if isinstance(index, slice):
            return FileChunks(self._path, self._spans[index])
        start, end = self._spans[index]
        with open(self._path, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


class _Cutter:
    """Shard boundaries of a stream of sorted lines, cut as ``shards.starts`` cuts them."""

    def __init__(self) -> None:
        self.rule = shards_module.RULE
        self.size = self.gap = 0
        self.first = True

    def starts_here(self, rid: bytes, n: int) -> bool:
        candidate = cut_value(rid) < n * self.rule.per_byte
        cut = not self.first and (
            (candidate and self.gap >= self.rule.min_bytes) or self.size + n > self.rule.max_bytes
        )
        if cut:
            self.size = 0
        if candidate:
            self.gap = 0
        self.first = False
        self.size += n
        self.gap += n
        return cut


def write_split(pairs: Iterable[tuple[bytes, bytes]], path: Path) -> Split:
    """Write sorted ``(id, line)`` pairs to ``path`` and return the split, its shards cut
    by the shard rule; its chunks (one per shard) are read back from ``path`` when used."""
    cutter, whole = _Cutter(), blake3()
    spans: list[tuple[int, int]] = []
    shards: list[Shard] = []
    hasher, first, count, start, offset = blake3(), "", 0, 0, 0
    types: Counter[str] = Counter()  # the shard's resources by type (Shard.types)
    with open(path, "wb", buffering=1 << 20) as out:
        for rid, line in pairs:
            if cutter.starts_here(rid, len(line)):
                shards.append(Shard(first, count, PREFIX + hasher.hexdigest(), tuple(sorted(types.items()))))
                spans.append((start, offset))
                hasher, count, start, types = blake3(), 0, offset, Counter()
            if not count:
                first = rid.decode("utf-8")
            out.write(line)
            types[type_of(line)] += 1
            hasher.update(line)
            whole.update(line)
            count += 1
            offset += len(line)
    total = sum(s.count for s in shards) + count
    if count:
        shards.append(Shard(first, count, PREFIX + hasher.hexdigest(), tuple(sorted(types.items()))))
        spans.append((start, offset))
    return _split(FileChunks(path, spans), shards, total, PREFIX + whole.hexdigest())


def _split(chunks: FileChunks, shards: list[Shard], total: int, whole: str) -> Split:
    if len(shards) <= 1:
        return Split(chunks, total, whole)
    parts = tuple(range(len(shards)))
    split = Split(chunks, total, split_digest(shards), shards=tuple(shards), parts=parts)
    split.__dict__["content_digest"] = whole  # known already: reading every shard is not needed
    return split


def in_memory(split: Split) -> Split:
    """The split with its chunks read into memory (for a caller that outlives the workspace)."""
    chunks = list(split.chunks)
    return Split(chunks, split.count, split.digest, shards=split.shards, parts=split.parts)


def build(pairs: Iterable[tuple[bytes, bytes]], folder: Path, name: str) -> tuple[Split, list[str]]:
    """The split of sorted pairs, written in ``folder``, and the ids found more than once.

    Its ids are written to ``ids.<name>`` too, one a line, for ``shared_ids``.
    """
    repeated: list[str] = []
    with open(folder / f"ids.{name}", "wb", buffering=1 << 20) as ids:

        def checked() -> Iterator[tuple[bytes, bytes]]:
            previous = None
            for rid, line in pairs:
                if rid == previous and (not repeated or repeated[-1] != rid.decode("utf-8")):
                    repeated.append(rid.decode("utf-8"))
                previous = rid
                ids.write(rid + b"\n")
                yield rid, line

        split = write_split(checked(), folder / f"lines.{name}")
    return split, repeated


def shared_ids(folder: Path, names: Sequence[str]) -> dict[str, set[str]]:
    """Ids that ``build`` wrote for more than one of the splits ``names``, with their splits."""
    shared: dict[str, set[str]] = {}
    if len(names) < 2:
        return shared
    with contextlib.ExitStack() as stack:
        streams = [
            _tagged(stack.enter_context(open(folder / f"ids.{n}", "rb", buffering=1 << 20)), n) for n in names
        ]
        previous, where = b"", ""
        for rid, name in heapq.merge(*streams):
            if rid == previous and name != where:
                shared.setdefault(rid.decode("utf-8"), {where}).add(name)
            previous, where = rid, name
    return shared


def _tagged(lines: Iterable[bytes], name: str) -> Iterator[tuple[bytes, str]]:
    for line in lines:
        yield line[:-1], name
