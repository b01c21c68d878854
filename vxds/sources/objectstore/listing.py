"""What a store's listing and reads say of an object, the cache that remembers reads, and
the listing of a large prefix fanned out over its sub-prefixes.

``Listed`` is an object as the listing shows it, ``Fetched`` what a read says of the bytes it
delivered, ``Stored`` the object as read: the version and digest of the bytes hashed.
``DigestSink`` hashes a stream as it arrives; ``DigestCache`` remembers, per upload, the
version and digest a read found, so an unchanged object is not read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

from blake3 import blake3

from vxds.fs import JsonCache
from vxds.hashing import PREFIX

Sink = Callable[[bytes], object]
# One page of a level of the listing: (prefix, token, delimited) -> the objects, the
# sub-prefixes (delimited only: the "folders" one level down) and the next page's token.
Level = tuple[list["Listed"], list[str], "str | None"]
LevelLister = Callable[[str, "str | None", bool], Awaitable[Level]]
# Levels listed with a delimiter before each sub-prefix is listed whole: in a BIDS layout,
# subjects then sessions, so thousands of listings run side by side, not one long walk.
FANOUT_DEPTH = 2


class Listed(NamedTuple):
    """An object as the listing shows it."""

    rel: str
    key: str
    size: int
    tag: str  # what changes with every upload: an ETag, a generation
    modified: str  # the modification time as the store wrote it


class Stored(NamedTuple):
    """An object as read: the version and digest of the bytes that were hashed."""

    rel: str
    key: str
    size: int
    version: str
    digest: str


class Fetched(NamedTuple):
    """What a read says of the bytes it delivered."""

    version: str  # the version to record (a version id, a generation, else the tag)
    tag: str  # comparable with ``Listed.tag``: equal when the listed upload was read


def visible(rel: str) -> bool:
    """Folder markers and hidden files are skipped, as the folder source skips them; in a
    Zarr (a ``*.zarr`` folder) dot-files such as ``.zattrs`` are members and are kept."""
    if not rel or rel.endswith("/"):
        return False
    parts = rel.split("/")
    for index, part in enumerate(parts):
        if part.lower().endswith(".zarr") and not part.startswith(".") and index < len(parts) - 1:
            return True
        if part.startswith("."):
            return False
    return True


class ByLevel:
    """A store listed by one call, ``_level`` (a page of a prefix, by ``/`` when delimited):
    the source's whole-prefix page and its level of the fanned-out listing are that call."""

    prefix: str

    async def _level(
        self, prefix: str, token: str | None, delimited: bool
    ) -> tuple[list[Listed], list[str], str | None]:
        raise NotImplementedError

    async def _list_page(self, token: str | None) -> tuple[list[Listed], str | None]:
        items, _, token = await self._level(self.prefix, token, False)
        return items, token

    async def _list_level(
        self, prefix: str, token: str | None, delimited: bool
    ) -> tuple[list[Listed], list[str], str | None]:
        return await self._level(prefix, token, delimited)


class DigestSink:
    """Hashes a stream's chunks, keeping them too when asked (sidecars and tables)."""

    def __init__(self, *, keep: bool) -> None:
        self.hasher = blake3()
        self.size = 0
        self.kept: list[bytes] | None = [] if keep else None

    def update(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.size += len(chunk)
        if self.kept is not None:
            self.kept.append(chunk)

    def value(self) -> str:
        return PREFIX + self.hasher.hexdigest()


class DigestCache:
    """An upload (key, tag, modification time, size) -> the version and digest read from it.

    Every upload gets a new tag and modification time, so an entry names one upload's bytes;
    entries never expire. The file is ``.vxds/objects/NAME.json``:
    ``{"version": 1, "entries": {"KEY\\tTAG\\tMODIFIED\\tSIZE": [VERSION, DIGEST]}}``.
    """

    def __init__(self, cache_dir: Path | None, name: str) -> None:
        path = cache_dir / "objects" / f"{name}.json" if cache_dir is not None else None
        self._file = JsonCache(path, 1)
        self.entries = self._file.table("entries")

    @staticmethod
    def _key(listed: Listed) -> str:
        return f"{listed.key}\t{listed.tag}\t{listed.modified}\t{listed.size}"

    def get(self, listed: Listed) -> tuple[str, str] | None:
        entry = self.entries.get(self._key(listed))
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry):
            return entry[0], entry[1]
        return None

    def put(self, listed: Listed, obj: Stored) -> None:
        self.entries[self._key(listed)] = [obj.version, obj.digest]
        self._file.mark()

    def save(self) -> None:
        self._file.save()


async def fan_out(
    list_level: LevelLister,
    retrying: Callable[[Callable[[], Awaitable[Level]]], Awaitable[Level]],
    root: str,
    *,
    width: int,
    depth: int = FANOUT_DEPTH,
) -> AsyncIterator[list[Listed]]:
    """Every object under ``root``, a page at a time, in no particular order; each listing
    call is made through ``retrying`` (the store's bounded retries).

    ``root`` is listed with a delimiter, then each sub-prefix the same way, ``width``
    listings at a time, down to ``depth`` levels; below that each sub-prefix is listed
    whole. Every key under ``root`` is either an object of a delimited level or under one
    of its sub-prefixes, so this lists exactly what one sequential walk lists.
    """
    gate = asyncio.Semaphore(width)
    pages: asyncio.Queue[list[Listed] | BaseException | None] = asyncio.Queue()

    async def walk(prefix: str, level: int) -> None:
        token: str | None = None
        below: list[str] = []
        delimited = level < depth
        while True:
            async with gate:
                objects, prefixes, token = await retrying(
                    lambda at=token: list_level(prefix, at, delimited)  # type: ignore[misc]
                )
            await pages.put(objects)
            below += prefixes
            if token is None:
                break
        await asyncio.gather(*(walk(sub, level + 1) for sub in below))

    async def run() -> None:
        try:
            await walk(root, 0)
        except Exception as exc:
            await pages.put(exc)
        await pages.put(None)

    producer = asyncio.ensure_future(run())
    try:
        while (page := await pages.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            yield page
    finally:
        producer.cancel()
