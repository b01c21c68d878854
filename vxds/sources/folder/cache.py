"""Local caches that let an unchanged folder be relisted without reading it again.

* ``TreeCache``: each folder's listing, keyed by the folder's (mtime, inode), with the stats
  of its files. A folder's modification time changes whenever an entry is added, removed
  or renamed in it, so an unchanged folder need not be listed again; its files are still
  stat'ed, since editing a file does not touch its folder. When every folder and file
  stats as before, the whole tree is known unchanged without listing anything.
* The resource index (``index.py``, ``FolderIndex``) is kept beside them, folder by folder:
  an unchanged listing reuses every resource without reading the hash cache or any file,
  and a changed one rebuilds only the folders whose files or sidecars changed.
* ``tree_digest``: the tree's root digest, built from per-folder digests (each over the
  folder's stat, names and its files' stats), while every folder and file stats as the
  last walk saw them. It is what a recipe's fingerprint records of a folder source; see
  docs/recipes.md for exactly what it trusts.

Both live under ``.vxds/`` and are optimisations only: a missing, stale or unreadable cache
is rebuilt. Entries younger than ``RACY_NS`` are not trusted, as git does for its index: a
file system with coarse timestamps could hide a change made within the same tick.
"""

from __future__ import annotations

import operator
import os
import stat
import time
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from vxds.fs import JsonCache
from vxds.hashing import digest_bytes

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


STAMP_CHUNK = 4096  # paths stat'ed per C loop: a change is found without stat'ing the rest
_FOLDER_KEY = operator.attrgetter("st_mtime_ns", "st_ino")
_FILE_KEY = operator.attrgetter("st_size", "st_mtime_ns", "st_ino")


class TreeCache:
    """Every folder's listing and its files' stats, from the last walk of the tree.

    ``unchanged_listing`` re-stats what was seen last time and, when nothing differs,
    returns the listing digest the last walk computed, without listing any folder. It reads
    ``stats.json`` (every folder and file path with its stat key, flat) when the last walk
    left one, and the per-folder ``tree.json`` (read only when needed) otherwise.
    """

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder
        self._file: JsonCache | None = None
        self._stamp = JsonCache(folder / "stats.json" if folder is not None else None, VERSION).data
        self._new: dict[str, Any] = {}
        self.complete = True  # every folder walked was old enough to cache
        self.stale: set[str] | None = None  # what ``unchanged_listing`` found changed (stats.json)

    @property
    def _tree(self) -> JsonCache:
        if self._file is None:
            self._file = JsonCache(self._folder / "tree.json" if self._folder is not None else None, VERSION)
        return self._file

    @property
    def _old(self) -> dict[str, Any]:
        return self._tree.table("dirs")

    @property
    def root(self) -> str | None:
        """The root digest of the last settled walk, if there was one."""
        found = self._stamp.get("root") if self._stamp else self._tree.data.get("root")
        return found if isinstance(found, str) else None

    def unchanged_listing(self, root: str) -> str | None:
        """The last listing digest, if every folder and file still stats the same."""
        if self._stamp:
            return self._unchanged_stamp(root)
        listing = self._tree.data.get("listing")
        if not isinstance(listing, str) or not self._old:
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
        return listing

    def _unchanged_stamp(self, root: str) -> str | None:
        """``unchanged_listing`` from ``stats.json``: every stat made and compared in C loops.

        When something differs, ``stale`` is left holding the folders (as ``tree.json`` names
        them) whose own stat or one of whose files' differs, so that a walk trusts the rest.
        A file is not checked to be a regular file here, as ``tree.json``'s check does: only
        trees whose every name was one have a ``stats.json``, and a file cannot become
        anything else without an unlink or rename in its folder, which changes the folder's
        modification time.
        """
        data = self._stamp
        try:
            base = root + "/"
            stale: set[str] = set()
            folders, files = data["folders"], data["files"]
            for index in _differing(folders, data["folder_keys"], base, _FOLDER_KEY, 2):
                stale.add(folders[index])
            for index in _differing(files, data["file_keys"], base, _FILE_KEY, 3):
                folder, slash, _name = files[index].rpartition("/")
                stale.add(folder + slash)
            listing = data["listing"]
        except (TypeError, ValueError, KeyError, IndexError):
            return None
        if not isinstance(listing, str):
            return None
        if stale:
            self.stale = stale if self._tree.data.get("listing") == listing else None  # the same walk's
            return None
        return listing

    def trusted(self, rel: str) -> tuple[tuple[int, int], Listing, list[list[int]]] | None:
        """A folder's key, listing and file keys as the last walk saw them, when the stats
        made by ``unchanged_listing`` found nothing of it changed since."""
        if self.stale is None or rel in self.stale:
            return None
        entry = self._old.get(rel)
        if not isinstance(entry, list) or len(entry) != 5:
            return None
        mtime, inode, names, subdirs, keys = entry
        if not isinstance(names, list) or not isinstance(keys, list) or len(names) != len(keys):
            return None
        if not all(isinstance(key, list) and len(key) == 3 for key in keys):
            return None
        return (mtime, inode), (names, subdirs), keys

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
        listing = listing if self.complete else None
        root = root_digest(self._new) if listing is not None else None
        tree = self._tree
        tree.data = {"listing": listing, "root": root, "dirs": self._new}
        tree.mark()
        tree.save()
        stamp = JsonCache(self._folder / "stats.json" if self._folder is not None else None, VERSION)
        stamp.data = _stamp(self._new, listing, root) if listing is not None else {}
        stamp.mark()
        stamp.save()


def _differing(rels: list[str], keys: list[int], base: str, key_of: Any, width: int) -> list[int]:
    """The indexes of the paths whose stat key (``width`` numbers each, flat in ``keys``)
    differs now, or which cannot be stat'ed; the stats are made in C loops, chunk by chunk."""
    if len(keys) != width * len(rels):
        raise ValueError("stats.json: keys and paths disagree")
    found: list[int] = []
    for start in range(0, len(rels), STAMP_CHUNK):
        paths = [base + rel for rel in rels[start : start + STAMP_CHUNK]]
        was = keys[start * width : (start + len(paths)) * width]
        try:
            if list(chain.from_iterable(map(key_of, map(os.stat, paths)))) == was:
                continue
        except OSError:
            pass
        for offset, path in enumerate(paths):
            try:
                now = list(key_of(os.stat(path)))
            except OSError:
                now = []
            if now != was[offset * width : (offset + 1) * width]:
                found.append(start + offset)
    return found


def _stamp(dirs: dict[str, Any], listing: str, root: str | None) -> dict[str, Any]:
    """``stats.json``'s data: flat lists of paths and keys; empty when a name was not a
    regular file (``tree.json``'s own check handles that case)."""
    files: list[str] = []
    file_keys: list[int] = []
    for rel, (_mtime, _inode, names, _subdirs, keys) in dirs.items():
        if None in keys:
            return {}
        files.extend(rel + name for name in names)
        file_keys.extend(chain.from_iterable(keys))
    return {
        "listing": listing,
        "root": root,
        "folders": list(dirs),
        "folder_keys": list(chain.from_iterable(entry[:2] for entry in dirs.values())),  # flat
        "files": files,
        "file_keys": file_keys,  # flat: size, mtime_ns, inode, size, ...
    }


def root_digest(dirs: dict[str, Any]) -> str:
    """The digest of a tree: over each folder's path and digest, in path order; a folder's
    digest is over its (mtime, inode), its file and folder names and its files' stats, so a
    change anywhere changes its folder's digest and the root's, and nothing else."""
    lines = [
        f"{rel}\t{digest_bytes(orjson.dumps(dirs[rel]))}\n".encode("utf-8", "surrogateescape")
        for rel in sorted(dirs)
    ]
    return digest_bytes(b"".join(lines))


def tree_digest(
    cache_dir: Path | None, root: Path, settings: str, *, saved_before: int | None = None
) -> str | None:
    """The root digest of the folder source at ``root`` (with ``settings``, what else its
    resources depend on, and this cache's version), or None when it is not known.

    By default every folder and file the last walk saw is stat'ed again and any difference
    gives None. With ``saved_before`` (ns), right after a scan that just wrote it, the saved
    digest is taken as it is, unless the cache was written at or after that time (by another
    process, whose walk this process did not see).
    """
    folder = cache_folder(cache_dir, root)
    if folder is None:
        return None
    if saved_before is not None:
        try:
            if (folder / "tree.json").stat().st_mtime_ns >= saved_before:
                return None
        except OSError:
            return None
    tree = TreeCache(folder)
    if not isinstance(tree.root, str):
        return None
    if saved_before is None and tree.unchanged_listing(str(root)) is None:
        return None
    return digest_bytes(f"{VERSION}\n{tree.root}\n{settings}".encode())


def file_key(path: str) -> Key:
    """``[size, mtime_ns, inode]`` of a regular file (following links), else ``None``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino] if stat.S_ISREG(st.st_mode) else None
