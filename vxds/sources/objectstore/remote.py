"""An object store's objects read and hashed on a cluster's workers (``--executor URL``).

The client lists the prefix (fanned out, ``listing.fan_out``) and asks the digest cache, as
a local run does; the objects the cache does not know go to the workers in batches
(``vxds.executor``). A worker opens the same store with the same options, streams each
object through the same retried read, and sends back what a local read keeps: the object
as read, the tag of the upload it read, and the bytes of a sidecar or table. The client
fills the cache, so the lock and ``.vxds/`` are what a local run writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vxds.executor import Executor
from vxds.progress import NO_PROGRESS
from vxds.sources.base import SourceContext
from vxds.sources.objectstore.listing import DigestCache, Listed, Stored

if TYPE_CHECKING:
    from vxds.sources.objectstore.base import BucketSource

Read = tuple[Stored, str, bytes | None]  # the object as read, the tag read, kept bytes


def collect(source: BucketSource, cache: DigestCache, executor: Executor) -> list[Stored]:
    """What ``BucketSource._collect`` returns, the reads done by ``executor``."""
    listed = source._run(lambda: _listing(source))
    found: list[Stored] = []
    pending: list[Listed] = []
    for item in listed:
        known = cache.get(item)
        if known is not None and not _keeps(item):
            found.append(Stored(item.rel, item.key, item.size, *known))
        else:
            pending.append(item)
    task = source.context.progress.task(f"hashing {source.url}", total=len(listed) or None)
    task.advance(len(found))
    work = ReadBatch(type(source), source.url, str(source.context.base), dict(source.context.options))
    try:
        reads = executor.map_batches(
            work, pending, [i.size for i in pending], on_done=lambda _: task.advance()
        )
    finally:
        task.close()
    for item, (obj, tag, kept) in zip(pending, reads, strict=True):
        if kept is not None:
            source._kept[item.rel] = kept
        if tag == item.tag:  # else the object was replaced after the listing
            cache.put(item, obj)
    return found + [obj for obj, _, _ in reads]


def _keeps(item: Listed) -> bool:
    """Sidecars and tables: their bytes build attrs, so they are read again and kept."""
    from vxds.sources.objectstore.base import KEEP_EXTENSIONS

    return item.rel.lower().endswith(KEEP_EXTENSIONS)


async def _listing(source: BucketSource) -> list[Listed]:
    return [item async for page in source._pages() for item in page]


@dataclass(frozen=True)
class ReadBatch:
    """A task's work: read and hash these objects of the store at ``url``."""

    kind: type[BucketSource]
    url: str
    base: str
    options: Mapping[str, Any]

    def __call__(self, batch: list[Listed]) -> list[Read]:
        source = _opened(self)
        return source._run(lambda: _read_all(source, batch))


_sources: dict[tuple[Any, ...], BucketSource] = {}  # per worker process: one connection per store


def _opened(work: ReadBatch) -> BucketSource:
    key = (work.kind, work.url, work.base, repr(sorted(work.options.items())))
    if key not in _sources:
        context = SourceContext(base=Path(work.base), options=work.options, progress=NO_PROGRESS)
        _sources[key] = work.kind(work.url, context)
    return _sources[key]


class _NoTask:
    def advance(self, amount: int = 1) -> None:
        pass


async def _read_all(source: BucketSource, batch: list[Listed]) -> list[Read]:
    gate = asyncio.Semaphore(source.concurrency)
    done = await asyncio.gather(*(source._read_one(i, _keeps(i), gate, _NoTask()) for i in batch))
    return [
        (obj, tag, source._kept.pop(item.rel, None)) for item, (obj, tag) in zip(batch, done, strict=True)
    ]
