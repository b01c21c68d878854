"""Sorting a split's lines with bounded memory: sorted runs spilled to files, then merged.

A recipe may yield millions of resources; ``Sorter`` keeps at most ``SPILL_BYTES`` of
canonical lines in memory, sorts them by id and writes them to a *run* file in a workspace
folder (``workspace``: under the project's ``.vxds/tmp/``, removed when the block ends,
however it ends). ``Sorter.merged`` merges the runs (``heapq.merge``) into one id-ordered
stream, and ``build`` cuts that stream into shards as it goes (``vxds.locks.shards``' rule,
the same cuts as ``Split.from_terminated``), one file per shard in the workspace, so that
the split handed to the lock writer reads its shards back one at a time (or links them into
the lock folder: ``FileChunks.whole_file``).

A record of a run file is ``id + b"\\0" + kind + line``: ids hold no control character, so
plain byte order of records is id order (UTF-8 bytes sort as code points do) and the merge
compares bytes at C speed. ``kind`` is one byte naming the resource's type (``Sorter.kinds``,
never ``\\n``), so that ``build`` counts a shard's types (``Shard.types``) without looking
into its lines again; ``UNKNOWN`` (a caller that did not say, or past the 244th type of a
split) sends the line to ``type_of``.
"""

from __future__ import annotations

import contextlib
import heapq
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import compress
from pathlib import Path
from typing import BinaryIO, overload

from blake3 import blake3

from vxds.fs import make_dirs
from vxds.fs.writer import create
from vxds.hashing import PREFIX
from vxds.locks import shards as shards_module
from vxds.locks.shards import Shard, split_digest, types_of
from vxds.locks.splits import Split

SPILL_BYTES = 256 << 20  # lines held in memory before a sorted run is written (tests lower it)
_RECORD_COST = 100  # a held line's bytes object, list slot and id, beyond its own length
_FIRST_KIND = 11  # kind bytes run from 11 (after b"\n") to 254
UNKNOWN = 255  # the kind byte of a line whose type ``build`` reads from the line
_UNKNOWN = bytes((0, UNKNOWN))


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
        self.kinds: list[str] = []  # the type of kind byte ``_FIRST_KIND + i`` is ``kinds[i]``
        self._separators: dict[str, bytes] = {}  # type -> b"\0" + its kind byte

    def add(self, rid: str, line: bytes, rtype: str | None = None) -> None:
        """Hold ``line`` (canonical, newline-terminated) of the resource ``rid`` of type
        ``rtype`` (None: not said, ``build`` reads it from the line)."""
        separator = _UNKNOWN if rtype is None else self._separators.get(rtype) or self._separator(rtype)
        record = rid.encode("utf-8") + separator + line
        self._held.append(record)
        self._size += len(record) + _RECORD_COST
        if self._size >= SPILL_BYTES:
            self._spill()

    def _separator(self, rtype: str) -> bytes:
        if _FIRST_KIND + len(self.kinds) >= UNKNOWN:
            return _UNKNOWN
        self._separators[rtype] = bytes((0, _FIRST_KIND + len(self.kinds)))
        self.kinds.append(rtype)
        return self._separators[rtype]

    def _spill(self) -> None:
        self._held.sort()
        path = self._folder / f"run.{self._name}.{len(self._runs)}"
        with create(path) as out:  # a full disk's error names the file
            out.writelines(self._held)  # not joined: that would hold the run twice
        self._runs.append(path)
        self._held, self._size = [], 0

    def merged(self) -> Iterator[bytes]:
        """Each record (``id + b"\\0" + kind + line``, as UTF-8) in id order; run files are
        removed once read."""
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
    shard's bytes are joined once, written once and hashed once, on ``writer``'s thread
    (file writes and blake3 release the GIL: the next shard's lines are cut meanwhile), at
    most ``IN_FLIGHT`` shards behind, so memory stays bounded."""

    def __init__(
        self, folder: Path, name: str, ids: BinaryIO, kinds: Sequence[str], writer: ThreadPoolExecutor
    ) -> None:
        self.folder, self.name, self.ids, self.names, self.writer = folder, name, ids, kinds, writer
        self.shards: list[tuple[str, int, Future[str], tuple[tuple[str, int], ...]]] = []
        self.paths: list[Path] = []
        self.lines: list[bytes] = []
        self.rids: list[bytes] = []  # the ids of the current shard's lines
        self.kinds = bytearray()  # and their kind bytes (``Sorter.kinds``)

    def shard(self) -> None:
        """End the current shard: write its file (on the writer's thread) and its ids, and list it."""
        path = self.folder / f"shard.{self.name}.{len(self.paths)}"
        written = self.writer.submit(_write_shard, path, self.lines)
        self.shards.append((self.rids[0].decode("utf-8"), len(self.lines), written, self.types()))
        if len(self.shards) > IN_FLIGHT:
            self.shards[-IN_FLIGHT - 1][2].result()  # the writer is at most IN_FLIGHT behind
        self.paths.append(path)
        self.rids.append(b"")
        self.ids.write(b"\n".join(self.rids))
        self.lines, self.rids, self.kinds = [], [], bytearray()

    def types(self) -> tuple[tuple[str, int], ...]:
        """``types_of`` the current shard's lines, counted from their kind bytes."""
        counts = Counter(self.kinds)  # bytes are counted as ints, at C speed
        unknown = counts.pop(UNKNOWN, 0)
        found = Counter({self.names[kind - _FIRST_KIND]: n for kind, n in counts.items()})
        if unknown:
            found.update(dict(types_of(compress(self.lines, map(UNKNOWN.__eq__, self.kinds)))))
        return tuple(sorted(found.items()))

    def split(self) -> Split:
        if self.lines:
            self.shard()
        shards = [Shard(first, n, written.result(), types) for first, n, written, types in self.shards]
        count = sum(s.count for s in shards)
        chunks = FileChunks(self.paths)
        if len(shards) <= 1:
            return Split(chunks, count, shards[0].digest if shards else _EMPTY)
        parts = tuple(range(len(shards)))
        return Split(chunks, count, split_digest(shards), shards=tuple(shards), parts=parts)


IN_FLIGHT = 2  # shards cut and not yet written, at most (each at most RULE.max_bytes)


def _write_shard(path: Path, lines: list[bytes]) -> str:
    """Write a shard's lines to ``path``; their digest."""
    data = b"".join(lines)
    with create(path) as out:
        out.write(data)
    return PREFIX + blake3(data).hexdigest()


_EMPTY = PREFIX + blake3().hexdigest()


def build(
    records: Iterable[bytes], folder: Path, name: str, kinds: Sequence[str] = ()
) -> tuple[Split, list[str]]:
    """The split of sorted records (``Sorter.merged``; ``kinds``: its ``Sorter.kinds``),
    written in ``folder``, and the ids found more than once. Its ids are written to
    ``ids.<name>`` too, one a line, for ``shared_ids``."""
    repeated: list[str] = []
    rule = shards_module.RULE
    per_byte, min_bytes, max_bytes = rule.per_byte, rule.min_bytes, rule.max_bytes
    size = gap = 0
    previous = None
    with (
        create(folder / f"ids.{name}", buffer_size=1 << 20) as ids,
        ThreadPoolExecutor(1, thread_name_prefix="vxds-shards") as writer,
    ):
        builder = _Builder(folder, name, ids, kinds, writer)
        lines, rids, types = builder.lines, builder.rids, builder.kinds
        for record in records:
            at = record.index(b"\0")
            rid, line = record[:at], record[at + 2 :]
            if rid == previous and (not repeated or repeated[-1] != rid.decode("utf-8")):
                repeated.append(rid.decode("utf-8"))
            previous, n = rid, len(line)
            # shards.cut_value(rid), inlined: blake3's first 8 bytes are its 8-byte digest
            candidate = int.from_bytes(blake3(rid).digest(8), "big") < n * per_byte
            if lines and ((candidate and gap >= min_bytes) or size + n > max_bytes):
                builder.shard()
                lines, rids, types, size = builder.lines, builder.rids, builder.kinds, 0
            if candidate:
                gap = 0
            size += n
            gap += n
            lines.append(line)
            rids.append(rid)
            types.append(record[at + 1])
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
