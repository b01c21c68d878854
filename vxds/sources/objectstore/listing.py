"""What a store's listing and reads say of an object, and the cache that remembers reads.

``Listed`` is an object as the listing shows it, ``Fetched`` what a read says of the bytes it
delivered, ``Stored`` the object as read: the version and digest of the bytes hashed.
``DigestSink`` hashes a stream as it arrives; ``DigestCache`` remembers, per upload, the
version and digest a read found, so an unchanged object is not read again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from blake3 import blake3

from vxds.fs import JsonCache
from vxds.hashing import PREFIX

Sink = Callable[[bytes], object]


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
