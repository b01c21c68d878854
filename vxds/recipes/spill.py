"""Sorting a split's lines with bounded memory: sorted runs spilled to files, then merged.

A recipe may yield millions of resources; ``Sorter`` keeps at most ``SPILL_BYTES`` of
canonical lines in memory, sorts them by id and writes them to a *run* file in a workspace
folder (``workspace``: under the project's ``.vxds/tmp/``, removed when the block ends,
however it ends). ``Sorter.merged`` merges the runs (``heapq.merge``) into one id-ordered
stream, and ``build`` cuts that stream into shards as it goes (``vxds.locks.shards``' rule,
the same cuts as ``Split.from_terminated``), one file per shard in the workspace, so that
the split handed to the lock writer reads its shards back one at a time (or links them into
the lock folder: ``FileChunks.whole_file``).

A record of a run file is ``id + b"\\0" + line``: ids hold no control character, so plain
byte order of records is id order (UTF-8 bytes sort as code points do) and the merge
compares bytes at C speed.
"""

from __future__ import annotations

import contextlib
import heapq
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, overload

from blake3 import blake3

from vxds.fs import make_dirs
from vxds.fs.writer import create
from vxds.hashing import PREFIX
from vxds.locks import shards as shards_module
from vxds.locks.shards import Shard, cut_value, split_digest, types_of
from vxds.locks.splits import Split

SPILL_BYTES = 256 << 20  # lines held in memory before a sorted run is written (tests lower it)
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
        with create(path) as out:  # a full disk's error names the file
            out.writelines(self._held)  # not joined: that would hold the run twice
        self._runs.append(path)
        self._held, self._size = [], 0

    def merged(self) -> Iterator[bytes]:
        """Each record (``id + b"\\0" + line``, as UTF-8) in id order; run files are removed
        once read."""
        self._held.sort()
        if not self._runs:
            records, self._held = self._held, []
            yield from records
            return
        held, self._held = self._held, []  # the last run is merged from memory, never written
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(open(path, "rb", buffering=1 << 20)) for path in self._runs]
            yield from heapq.merge(*files, held)
        for path in self._runs:
            path.unlink(missing_ok=True)


class FileChunks(Sequence[bytes]):
    """A split's shards as chunks, each read from its file (one per shard) when asked for."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> FileChunks: ...
    def __getitem__(self, index: int | slice) -> bytes | FileChunks:
        if isinstance(index, slice):
            return FileChunks(self._paths[index])
        return self._paths[index].read_bytes()

    @property
    def whole_file(self) -> Path | None:
        """The file holding exactly these chunks' bytes (one shard's), for the lock writer
        to link rather than copy (``vxds.locks.store``); None for several or none."""
        return self._paths[0] if len(self._paths) == 1 else None


class _Builder:
    """One split's sorted records made into shard files in a workspace, cut by the shard
    rule as ``shards.starts`` cuts (the same cuts as ``Split.from_terminated``); each
    shard's bytes are joined once, written once and hashed once."""

    def __init__(self, folder: Path, name: str, ids: BinaryIO) -> None:
        self.folder, self.name, self.ids = folder, name, ids
        self.shards: list[Shard] = []
        self.paths: list[Path] = []
        self.lines: list[bytes] = []
        self.rids: list[bytes] = []  # the ids of the current shard's lines

    def shard(self) -> None:
        """End the current shard: write its file and its ids, and list it."""
        data = b"".join(self.lines)
        path = self.folder / f"shard.{self.name}.{len(self.paths)}"
        with create(path) as out:
            out.write(data)
        digest = PREFIX + blake3(data).hexdigest()
        self.shards.append(Shard(self.rids[0].decode("utf-8"), len(self.lines), digest, types_of(self.lines)))
        self.paths.append(path)
        self.rids.append(b"")
        self.ids.write(b"\n".join(self.rids))
        self.lines, self.rids = [], []

    def split(self) -> Split:
        if self.lines:
            self.shard()
        count = sum(s.count for s in self.shards)
        chunks = FileChunks(self.paths)
        if len(self.shards) <= 1:
            return Split(chunks, count, self.shards[0].digest if self.shards else _EMPTY)
        parts = tuple(range(len(self.shards)))
        return Split(chunks, count, split_digest(self.shards), shards=tuple(self.shards), parts=parts)


_EMPTY = PREFIX + blake3().hexdigest()


def build(records: Iterable[bytes], folder: Path, name: str) -> tuple[Split, list[str]]:
    """The split of sorted records (``Sorter.merged``), written in ``folder``, and the ids
    found more than once. Its ids are written to ``ids.<name>`` too, one a line, for
    ``shared_ids``."""
    repeated: list[str] = []
    rule = shards_module.RULE
    per_byte, min_bytes, max_bytes = rule.per_byte, rule.min_bytes, rule.max_bytes
    size = gap = 0
    previous = None
    with create(folder / f"ids.{name}") as ids:
        builder = _Builder(folder, name, ids)
        lines, rids = builder.lines, builder.rids
        for record in records:
            at = record.index(b"\0")
            rid, line = record[:at], record[at + 1 :]
            if rid == previous and (not repeated or repeated[-1] != rid.decode("utf-8")):
                repeated.append(rid.decode("utf-8"))
            previous, n = rid, len(line)
            candidate = cut_value(rid) < n * per_byte
            if lines and ((candidate and gap >= min_bytes) or size + n > max_bytes):
                builder.shard()
                lines, rids, size = builder.lines, builder.rids, 0
            if candidate:
                gap = 0
            size += n
            gap += n
            lines.append(line)
            rids.append(rid)
        split = builder.split()
    return split, repeated


def in_memory(split: Split) -> Split:
    """The split with its chunks read into memory (for a caller that outlives the workspace)."""
    chunks = list(split.chunks)
    return Split(chunks, split.count, split.digest, shards=split.shards, parts=split.parts)


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
