"""Local caches that let an unchanged folder be relisted without reading it again.

* ``TreeCache``: each folder's listing, keyed by the folder's (mtime, inode), with the stats
  of its files. A folder's modification time changes whenever an entry is added, removed
  or renamed in it, so an unchanged folder need not be listed again; its files are still
  stat'ed, since editing a file does not touch its folder. When every folder and file
  stats as before, the whole tree is known unchanged without listing anything.
* ``IndexCache``: the resources built from the whole tree (and the snapshot), keyed by the
  digest of every path with its size, modification time and inode: the same test the
  hash cache makes file by file, made once for the tree. Resources are a function of the
  paths and bytes alone, so an unchanged listing means unchanged resources, and neither
  the hash cache nor any file needs to be read.

Both live under ``.vxds/`` and are optimisations only: a missing, stale or unreadable cache
is rebuilt. Entries younger than ``RACY_NS`` are not trusted, as git does for its index: a
file system with coarse timestamps could hide a change made within the same tick.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vxds.fs import JsonCache
from vxds.hashing import digest_bytes
from vxds.resource import Resource

RACY_NS = 2_000_000_000
VERSION = 4  # 2: links out of the tree and names no id can hold are refused; 3: Zarr, NIfTI;
# 4: a dataset root's .bidsignore is listed (vxds.sources.folder.listing)


def cache_folder(cache_dir: Path | None, root: Path) -> Path | None:
    """Where the caches of the folder source at ``root`` live."""
    if cache_dir is None:
        return None
    return cache_dir / "folders" / digest_bytes(str(root.resolve()).encode())[7:23]


def racy_after() -> int:
    """Timestamps after this (in ns) are too recent to trust."""
    return time.time_ns() - RACY_NS


Listing = tuple[list[str], list[str]]  # file names, folder names
Key = list[int] | None  # a file's [size, mtime_ns, inode]; None when it is not a regular file


class TreeCache:
    """Every folder's listing and its files' stats, from the last walk of the tree.

    ``unchanged_listing`` re-stats what was seen last time and, when nothing differs,
    returns the listing digest the last walk computed, without listing any folder.
    """

    def __init__(self, folder: Path | None) -> None:
        self._file = JsonCache(folder / "tree.json" if folder is not None else None, VERSION)
        self._old: dict[str, Any] = self._file.table("dirs")
        self._listing = self._file.data.get("listing")
        self._new: dict[str, Any] = {}
        self.complete = True  # every folder walked was old enough to cache

    def unchanged_listing(self, root: str) -> str | None:
        """The last listing digest, if every folder and file still stats the same."""
        if not isinstance(self._listing, str) or not self._old:
            return None
        stat_ = os.stat  # the hot loop of a warm relock: one stat per folder and per file
        try:
            for rel, (mtime, inode, names, _subdirs, keys) in self._old.items():
                folder = f"{root}/{rel}"
                st = stat_(folder)
                if st.st_mtime_ns != mtime or st.st_ino != inode:
                    return None
                for name, key in zip(names, keys, strict=True):
                    if key is None:  # not a regular file last time: must still not be one
                        if file_key(folder + name) is not None:
                            return None
                        continue
                    st = stat_(folder + name)
                    if st.st_size != key[0] or st.st_mtime_ns != key[1] or st.st_ino != key[2]:
                        return None
                    if not stat.S_ISREG(st.st_mode):
                        return None
        except (OSError, TypeError, ValueError, IndexError):
            return None
        return self._listing

    def get(self, rel: str, key: tuple[int, int]) -> Listing | None:
        entry = self._old.get(rel)
        try:
            if entry is not None and entry[0] == key[0] and entry[1] == key[1]:
                return entry[2], entry[3]
        except (TypeError, IndexError, KeyError):
            pass
        return None

    def put(self, rel: str, key: tuple[int, int], listing: Listing, keys: list[Key], racy: int) -> None:
        if key[0] < racy:
            self._new[rel] = [key[0], key[1], listing[0], listing[1], keys]
        else:
            self.complete = False

    def save(self, listing: str | None) -> None:
        """Write what this walk saw; ``listing`` only when nothing in the tree was racy."""
        self._file.data = {"listing": listing if self.complete else None, "dirs": self._new}
        self._file.mark()
        self._file.save()


def file_key(path: str) -> Key:
    """``[size, mtime_ns, inode]`` of a regular file (following links), else ``None``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino] if stat.S_ISREG(st.st_mode) else None


@dataclass(frozen=True)
class Index:
    snapshot: str
    resources: list[Resource]
    rows: dict[str, bytes]


class IndexCache:
    """The resources of the whole tree, keyed by the digest of its listing with stats."""

    def __init__(self, folder: Path | None, settings: str = "") -> None:
        self.folder = folder
        self.settings = settings  # what else resources depend on (record_tables), as text

    def _key(self, listing: str) -> str:
        return listing if not self.settings else digest_bytes(f"{listing}\n{self.settings}".encode())

    def _path(self, listing: str) -> Path | None:
        return self.folder / f"index-{listing.partition(':')[2][:32]}.json" if self.folder else None

    def load(self, listing: str) -> Index | None:
        listing = self._key(listing)
        data = JsonCache(self._path(listing), VERSION).data
        if data.get("listing") != listing:
            return None
        try:
            resources = [_resource(row) for row in data["resources"]]
            rows = {rid: body.encode() for rid, body in data["rows"].items()}
            return Index(str(data["snapshot"]), resources, rows)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def save(self, listing: str, snapshot: str, resources: list[Resource], rows: dict[str, bytes]) -> None:
        listing = self._key(listing)
        path = self._path(listing)
        if path is None:
            return
        cache = JsonCache(path, VERSION)
        cache.data = {
            "listing": listing,
            "snapshot": snapshot,
            "resources": [_row(r) for r in resources],
            "rows": {rid: body.decode() for rid, body in rows.items()},
        }
        cache.mark()
        cache.save()
        for old in path.parent.glob("index-*.json"):
            if old != path:
                old.unlink(missing_ok=True)


def _row(r: Resource) -> list[Any]:
    # A file's version is its hash and its uri its id: store 0 rather than the same text twice.
    version = 0 if r.version == r.hash else r.version
    uri = 0 if r.uri == r.id else r.uri
    return [r.id, version, r.type, r.hash, r.size, uri, r.attrs, r._checked]


def _resource(row: list[Any]) -> Resource:
    rid, version, rtype, digest, size, uri, attrs, ok = row
    resource = Resource(
        rid, digest if version == 0 else version, rtype, digest, size, rid if uri == 0 else uri, attrs
    )
    if ok:
        object.__setattr__(resource, "_checked", True)  # it was checked when the index was built
    return resource
