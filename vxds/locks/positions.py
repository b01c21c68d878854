"""A split as a sequence of resources in id order, reached without parsing the others.

``Split`` (``vxds.locks.splits``) takes its ``len``, iteration, indexing, slicing and
``position(id)`` from ``SplitSequence``. The split's chunks are a lock's files (one per
shard) or a split being built (one line each): the shard list's counts say which chunk
holds a position, so only that chunk is read (a spilled split reads it from disk) and
indexed by line, and the last chunk indexed is kept. Lines are id-sorted, so an id is found
by bisection: of the shard list by first id, then of that shard's lines.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from typing import overload

import orjson

from vxds.locks.format import CorruptLock, Problem
from vxds.locks.shards import Shard, line_id
from vxds.resource import Resource


class SplitSequence:
    """The sequence methods of ``Split``, over the fields it declares."""

    chunks: Sequence[bytes]
    count: int
    path: Path | None
    shards: tuple[Shard, ...]

    def resources(self) -> Iterator[Resource]:
        raise NotImplementedError  # Split's

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Resource]:
        return self.resources()

    @overload
    def __getitem__(self, index: int) -> Resource: ...
    @overload
    def __getitem__(self, index: slice) -> list[Resource]: ...
    def __getitem__(self, index: int | slice) -> Resource | list[Resource]:
        """The resource at ``index`` in id order (negative: from the end), or a list of them
        for a slice."""
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(self.count))]
        position = operator.index(index)
        if not -self.count <= position < self.count:
            raise IndexError(f"split index {position} out of range for {self.count} resources")
        return self._at(position % self.count)

    def position(self, rid: str) -> int | None:
        """Where the resource with id ``rid`` is in the split (None: it is not there)."""
        lo, hi = 0, self.count
        if self.shards and len(self.chunks) == len(self.shards):
            shard = bisect_right([s.first for s in self.shards], rid) - 1
            if shard < 0:
                return None
            ends = self._chunk_ends
            lo, hi = (ends[shard - 1] if shard else 0), ends[shard]
        end = hi
        while lo < hi:
            middle = (lo + hi) // 2
            if line_id(self._line(middle)[0]) < rid:
                lo = middle + 1
            else:
                hi = middle
        return lo if lo < end and line_id(self._line(lo)[0]) == rid else None

    def _at(self, position: int) -> Resource:
        line, number = self._line(position)
        try:
            return Resource.from_line(line)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            file = self.path.name if self.path is not None else "split"
            problem = Problem(f"{file}: line {number}: not a resource record", kind="json", file=file)
            raise CorruptLock(self.path.parent if self.path else Path(file), [problem]) from None

    def _line(self, position: int) -> tuple[bytes, int]:
        """The line at ``position`` and its number in its chunk (from 1)."""
        if len(self.chunks) == self.count:  # one line per chunk: a split being built
            return self.chunks[position], 1
        ends = self._chunk_ends
        chunk = bisect_right(ends, position)
        line = position - (ends[chunk - 1] if chunk else 0)
        data, starts = self._indexed(chunk)
        stop = starts[line + 1] if line + 1 < len(starts) else len(data)
        return data[starts[line] : stop], line + 1

    @cached_property
    def _chunk_ends(self) -> list[int]:
        """The number of lines up to the end of each chunk: from the shard list's counts
        when each shard is one chunk (nothing read), else counted once."""
        if len(self.chunks) <= 1:
            return [self.count] * len(self.chunks)
        if len(self.chunks) == len(self.shards):
            return list(accumulate(s.count for s in self.shards))
        return list(accumulate(chunk.count(b"\n") for chunk in self.chunks))

    @cached_property
    def _cursor(self) -> dict[int, tuple[bytes, list[int]]]:
        return {}

    def _indexed(self, chunk: int) -> tuple[bytes, list[int]]:
        """A chunk's bytes and where each of its lines starts; only the last one is kept."""
        cursor = self._cursor
        if chunk not in cursor:
            data = self.chunks[chunk]
            starts = [0]
            at = data.find(b"\n")
            while 0 <= at < len(data) - 1:
                starts.append(at + 1)
                at = data.find(b"\n", at + 1)
            cursor.clear()
            cursor[chunk] = (data, starts)
        return cursor[chunk]
